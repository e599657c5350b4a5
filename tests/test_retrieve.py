"""Retrieval: metrics against brute-force re-implementations of CT-CLIP's scripts, FAISS index choice and
recall, and `ctvl retrieve build | query | eval` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ctvl_cli.cli.app import app
from ctvl_cli.retrieval.metrics import jaccard, map_at_k, recall_at_k


def _official_map(emb, labels, ks):
    """Loop-for-loop port of scripts/volume_to_volume_new.py (self-match kept, accumulator never reset)."""
    gal = [i for i in range(len(emb)) if labels[i].sum() != 0]
    out, ratios_external = {}, []
    for k in ks:
        for i in range(len(emb)):
            crosses = [
                float(emb[i] @ emb[g] / (np.linalg.norm(emb[i]) * np.linalg.norm(emb[g]))) for g in gal
            ]
            top = [j for j, _ in sorted(enumerate(crosses), key=lambda x: x[1], reverse=True)[:k]]
            ratios = []
            for j in top:
                a, b = labels[i], labels[gal[j]]
                both = int(((a == 1) & (b == 1)).sum())
                one = int((a != b).sum())
                ratios.append(both / (both + one))
            ratios_external.append(np.mean(ratios))
        out[k] = float(np.mean(ratios_external))
    return out


def _fixed_map(emb, labels, ks):
    """The same definition without the quirks: query removed from the gallery, each K on its own."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    gal = [i for i in range(len(emb)) if labels[i].sum() != 0]
    out = {}
    for k in ks:
        vals = []
        for i in range(len(emb)):
            cand = [g for g in gal if g != i]
            sims = [float(e[i] @ e[g]) for g in cand]
            top = [cand[j] for j, _ in sorted(enumerate(sims), key=lambda x: x[1], reverse=True)[:k]]
            vals.append(np.mean([jaccard(labels[i : i + 1], labels[t : t + 1])[0, 0] for t in top]))
        out[k] = float(np.mean(vals))
    return out


@pytest.fixture
def synth():
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(5, 16))
    assign = rng.integers(0, 5, 60)
    emb = centers[assign] + 0.8 * rng.normal(size=(60, 16))
    labels = (rng.random((60, 6)) < 0.25).astype(int)
    labels[:5] = 0  # some scans without findings (queries only)
    return emb, labels


def test_map_matches_official_script_and_fixed_definition(synth):
    emb, labels = synth
    ks = (1, 5, 10)
    got = map_at_k(emb, labels, ks, ctclip_compat=True)
    want = _official_map(emb, labels, ks)
    for k in ks:
        assert abs(got[k] - want[k]) < 1e-12
    got = map_at_k(emb, labels, ks)
    want = _fixed_map(emb, labels, ks)
    for k in ks:
        assert abs(got[k] - want[k]) < 1e-12
    # the self-match inflates MAP@1 in the official definition
    assert map_at_k(emb, labels, (1,), ctclip_compat=True)[1] > map_at_k(emb, labels, (1,))[1]


def test_recall_matches_official_script(synth):
    emb, _ = synth
    rng = np.random.default_rng(1)
    text = emb + 0.9 * rng.normal(size=emb.shape)
    img = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    txt = text / np.linalg.norm(text, axis=1, keepdims=True)
    for k in (1, 5, 10):
        hits = 0
        for i in range(len(txt)):
            crosses = [float(txt[i] @ img[j]) for j in range(len(img))]
            top = [j for j, _ in sorted(enumerate(crosses), key=lambda x: x[1], reverse=True)[:k]]
            hits += i in top
        assert recall_at_k(txt, img, (k,), ctclip_compat=True)[k] == hits / len(txt)
        assert recall_at_k(txt, img, (k,))[k] == hits / len(txt)  # no ties here
    # ties: the default counts them against the target, compat lets earlier images win
    tied = np.ones((3, 4))
    assert recall_at_k(tied, tied, (1,))[1] == 0.0
    assert recall_at_k(tied, tied, (1,), ctclip_compat=True)[1] == pytest.approx(1 / 3)


def test_index_choice_and_recall():
    from ctvl_cli.retrieval import index as ix

    assert ix.choose(50_000, 512)[0] == "Flat"
    f, p = ix.choose(1_000_000, 512, memory_budget=8e9)
    assert f == "IVF1024,PQ64x8,Refine(SQ8)" and p["nprobe"] == 64
    f, p = ix.choose(1_000_000, 512, memory_budget=0.5e9)
    assert f == "IVF1024,PQ64x8"
    assert ix.choose(1_000_000, 512, kind="hnsw")[0] == "HNSW32,Flat"
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(50, 32))
    x = (centers[rng.integers(0, 50, 20000)] + 0.3 * rng.normal(size=(20000, 32))).astype(np.float32)
    q = x[:200] + 0.05 * rng.normal(size=(200, 32)).astype(np.float32)
    exact = ix.build(x, "Flat", {})
    _, gt = ix.search(exact, q, 10, {})
    for kind in ("hnsw", "ivf", "ivfpq"):
        fac, params = ix.choose(len(x), 32, kind=kind)
        idx = ix.build(x, fac, params)
        _, got = ix.search(idx, q, 10, params)
        rec = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(gt, got)])
        assert rec >= 0.9, (kind, rec)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    from typer.testing import CliRunner

    from ctvl_cli.phantom import write_phantoms

    d = tmp_path_factory.mktemp("rt")
    write_phantoms(d / "scans", n=6, seed=21)
    cache = d / "c.h5"
    r = CliRunner().invoke(
        app,
        [
            "embed",
            str(d / "scans"),
            "--reports",
            str(d / "scans" / "reports.csv"),
            "--model",
            "ctvl-tiny-test",
            "--cache",
            str(cache),
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    return d, cache


def test_build_query_add_and_refusals(runner, embedded, tmp_path):
    d, cache = embedded
    idx = tmp_path / "idx"
    r = runner.invoke(app, ["retrieve", "build", "--cache", str(cache), "--index", str(idx), "-f", "json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["factory"] == "Flat" and out["vectors"] == 6
    side = json.loads((idx / "index.json").read_text())
    assert side["model_name"] == "ctvl-tiny-test" and len(side["ids"]) == 6 and side["factory"] == "Flat"
    scan = d / "scans" / "phantom_21_000002.nii.gz"
    r = runner.invoke(
        app, ["retrieve", "query", "--index", str(idx), "--image", str(scan), "-k", "3", "-f", "json"]
    )
    assert r.exit_code == 0, r.stderr
    hits = json.loads(r.stdout)
    assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["scan"] == "phantom_21_000002"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5) and hits[0]["score"] >= hits[1]["score"]
    r = runner.invoke(
        app,
        [
            "retrieve",
            "query",
            "--index",
            str(idx),
            "--image",
            str(scan),
            "-k",
            "3",
            "--exclude-self",
            "-f",
            "json",
        ],
    )
    assert "phantom_21_000002" not in [h["scan"] for h in json.loads(r.stdout)]
    r = runner.invoke(
        app,
        [
            "retrieve",
            "query",
            "--index",
            str(idx),
            "--text",
            "Pleural effusion.",
            "--reports",
            str(d / "scans" / "reports.csv"),
            "-k",
            "2",
            "-f",
            "jsonl",
        ],
    )
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 2 * 7 and rows[0]["query"] == "text1"
    # an existing index is never silently replaced
    r = runner.invoke(app, ["retrieve", "build", "--cache", str(cache), "--index", str(idx)])
    assert r.exit_code == 2 and "--add" in r.stderr
    # --add with nothing new adds nothing; new scans are added
    from ctvl_cli.phantom import write_phantoms

    write_phantoms(tmp_path / "more", n=2, seed=22)
    c2 = tmp_path / "c2.h5"
    import shutil

    shutil.copy(cache, c2)
    assert (
        runner.invoke(
            app, ["embed", str(tmp_path / "more"), "--model", "ctvl-tiny-test", "--cache", str(c2)]
        ).exit_code
        == 0
    )
    r = runner.invoke(
        app, ["retrieve", "build", "--cache", str(c2), "--index", str(idx), "--add", "-f", "json"]
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == 2 and json.loads(r.stdout)["vectors"] == 8
    # embeddings of another model are refused
    other = tmp_path / "other.json"
    card = json.loads(
        (
            __import__("pathlib").Path(__file__).parents[1] / "ctvl_cli/registry/cards/ctvl-tiny-test.json"
        ).read_text()
    )
    card["weights"] = [{"kind": "init", "seed": 5}]
    other.write_text(json.dumps(card))
    c3 = tmp_path / "c3.h5"
    assert (
        runner.invoke(
            app, ["embed", str(tmp_path / "more"), "--model", str(other), "--cache", str(c3)]
        ).exit_code
        == 0
    )
    r = runner.invoke(app, ["retrieve", "build", "--cache", str(c3), "--index", str(idx), "--add"])
    assert r.exit_code == 2 and "cannot be mixed" in r.stderr


def test_eval_cli_matches_library(runner, embedded):
    from ctvl_cli.api.zeroshot import cached_images, resolve_key
    from ctvl_cli.zeroshot.truth import read_label_table, scan_key

    d, cache = embedded
    args = [
        "retrieve",
        "eval",
        "--cache",
        str(cache),
        "--labels",
        str(d / "scans" / "labels.csv"),
        "--reports",
        str(d / "scans" / "reports.csv"),
        "--map-k",
        "1,3",
        "--recall-k",
        "1,3",
        "-f",
        "json",
    ]
    fixed = {x["metric"]: x["value"] for x in json.loads(runner.invoke(app, args).stdout)}
    compat = {
        x["metric"]: x["value"] for x in json.loads(runner.invoke(app, [*args, "--ctclip-compat"]).stdout)
    }
    _, _, key = resolve_key("ctvl-tiny-test")
    _, emb, recs = cached_images(cache, key)
    _, table = read_label_table(d / "scans" / "labels.csv")
    lab = np.array([table[scan_key(r["name"])] for r in recs])
    assert fixed["MAP@3"] == round(map_at_k(emb, lab, (1, 3))[3], 4)
    assert compat["MAP@3"] == round(map_at_k(emb, lab, (1, 3), ctclip_compat=True)[3], 4)
    assert set(fixed) == {"MAP@1", "MAP@3", "R@1", "R@3"}
    r = runner.invoke(app, ["retrieve", "eval", "--cache", str(cache)])
    assert r.exit_code == 2 and "nothing to evaluate" in r.stderr
