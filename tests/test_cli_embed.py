"""`ctvl embed` end to end through the CLI: outputs, cache contents, failures, shards, locking, SIGKILL, resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ctvl_cli.cache import EmbeddingCache
from ctvl_cli.cli.app import app
from tests.helpers import phantom_array, write_nifti

MODEL = ["--model", "ctvl-tiny-test"]


@pytest.fixture
def scans(tmp_path):
    d = tmp_path / "scans"
    (d / "sub").mkdir(parents=True)
    for i in range(4):
        write_nifti((d / "sub" if i % 2 else d) / f"s{i}.nii.gz", phantom_array(seed=i))
    return d


@pytest.fixture
def reports(tmp_path):
    p = tmp_path / "reports.csv"
    p.write_text("id,text\nr1,Lung nodule is present.\nr2,No pleural effusion.\n")
    return p


def _json(r):
    assert r.stdout.strip(), r.stderr
    return json.loads(r.stdout)


def _cache_entries(path):
    with EmbeddingCache.open(path) as c:
        (key,) = c.models()
        ids, emb, recs = c.get(key)
    return key, dict(zip(ids, emb)), recs


def test_embed_volumes_and_reports_then_rerun_skips(runner, scans, reports, tmp_path):
    cache = tmp_path / "emb.h5"
    r = runner.invoke(
        app,
        ["embed", str(scans), "--reports", str(reports), "--cache", str(cache), *MODEL, "--format", "json"],
    )
    assert r.exit_code == 0, r.stderr
    rows = _json(r)
    assert sorted((x["name"], x["status"]) for x in rows) == sorted(
        [(f"s{i}", "embedded") for i in range(4)] + [("r1", "embedded"), ("r2", "embedded")]
    )
    assert "6 embedded" in r.stderr
    # independent check: the cached vectors equal the model applied directly
    from ctvl_cli.io.volume import load_volume
    from ctvl_cli.models.factory import create_model_and_transforms

    model, pre, tok, _ = create_model_and_transforms("ctvl-tiny-test")
    _, entries, recs = _cache_entries(cache)
    by_name = {rec["name"]: rec for rec in recs}
    with torch.no_grad():
        direct = model.encode_image(pre(load_volume(scans / "s0.nii.gz"))[None])[0].numpy()
        text = model.encode_text(**tok(["Lung nodule is present."]))[0].numpy()
    assert np.allclose(entries[by_name["s0"]["id"]], direct, atol=1e-6)
    assert np.allclose(entries[by_name["r1"]["id"]], text, atol=1e-6)
    assert by_name["s1"]["shape"] == [48, 40, 24] and by_name["s1"]["spacing"] == pytest.approx(
        [1.5, 1.5, 3.0]
    )
    assert by_name["r1"]["kind"] == "text"
    r2 = runner.invoke(
        app,
        ["embed", str(scans), "--reports", str(reports), "--cache", str(cache), *MODEL, "--format", "csv"],
    )
    assert r2.exit_code == 0
    lines = r2.stdout.strip().splitlines()
    assert lines[0] == "name,kind,status,id,source,error" and all(",cached," in ln for ln in lines[1:])


def test_bad_file_is_recorded_rest_finishes_exit_1(runner, scans, tmp_path):
    (scans / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    cache = tmp_path / "emb.h5"
    r = runner.invoke(app, ["embed", str(scans), "--cache", str(cache), *MODEL, "--format", "jsonl"])
    assert r.exit_code == 1
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    status = {x["name"]: x["status"] for x in rows}
    assert status == {
        "broken": "failed",
        "s0": "embedded",
        "s1": "embedded",
        "s2": "embedded",
        "s3": "embedded",
    }
    assert "1 of 5 inputs failed" in r.stderr and "broken.nii.gz" in r.stderr
    assert len(_cache_entries(cache)[1]) == 4


def test_workers_give_identical_embeddings(runner, scans, tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert runner.invoke(app, ["embed", str(scans), "-c", str(a), *MODEL]).exit_code == 0
    assert (
        runner.invoke(app, ["embed", str(scans), "-c", str(b), *MODEL, "--workers", "2", "-b", "3"]).exit_code
        == 0
    )
    ea, eb = _cache_entries(a)[1], _cache_entries(b)[1]
    assert ea.keys() == eb.keys() and all(np.allclose(ea[k], eb[k], atol=1e-6) for k in ea)


def test_shards_are_disjoint_and_merge_to_the_whole(runner, scans, tmp_path):
    full = tmp_path / "full.h5"
    assert runner.invoke(app, ["embed", str(scans), "-c", str(full), *MODEL]).exit_code == 0
    names = []
    for i in range(3):
        r = runner.invoke(
            app,
            [
                "embed",
                str(scans),
                "-c",
                str(tmp_path / f"s{i}.h5"),
                *MODEL,
                "--shard",
                f"{i}/3",
                "--format",
                "json",
            ],
        )
        assert r.exit_code == 0
        names.append({x["name"] for x in _json(r)})
    assert sum(len(n) for n in names) == 4 and set.union(*names) == {"s0", "s1", "s2", "s3"}
    r = runner.invoke(
        app,
        [
            "cache",
            "merge",
            str(tmp_path / "m.h5"),
            *[str(tmp_path / f"s{i}.h5") for i in range(3)],
            "--format",
            "json",
        ],
    )
    assert r.exit_code == 0 and _json(r)["added"] == 4
    k1, e_full, _ = _cache_entries(full)
    k2, e_merged, _ = _cache_entries(tmp_path / "m.h5")
    assert k1 == k2 and e_full.keys() == e_merged.keys()
    bad = runner.invoke(app, ["embed", str(scans), "-c", str(full), *MODEL, "--shard", "3/3"])
    assert bad.exit_code == 2 and "invalid --shard" in bad.stderr


def test_concurrent_writer_gets_clear_error(runner, scans, tmp_path):
    cache = tmp_path / "emb.h5"
    with EmbeddingCache.open(cache, writable=True):
        r = runner.invoke(app, ["embed", str(scans), "-c", str(cache), *MODEL])
    assert r.exit_code == 1 and "being written by another process" in r.stderr and r.stderr.count("\n") == 1


def test_usage_errors_exit_2(runner, scans, tmp_path):
    r = runner.invoke(app, ["embed", str(tmp_path / "nothing_here"), *MODEL])
    assert r.exit_code == 2 and "no such file" in r.stderr and r.stdout == ""
    r = runner.invoke(app, ["embed", str(scans), "--model", "no-such-model"])
    assert r.exit_code == 2 and "unknown model" in r.stderr


def _start_embed_and_wait(tmp_path, n: int, journal_files: int, roll_axis: int):
    """Start a real `ctvl embed` subprocess over n volumes; return it once `journal_files` batches are durable."""
    d = tmp_path / "many"
    d.mkdir()
    base = phantom_array(shape=(160, 160, 80))
    for i in range(n):
        write_nifti(d / f"v{i:03d}.nii.gz", np.roll(base, i, axis=roll_axis))
    cmd = [
        sys.executable,
        "-m",
        "ctvl_cli",
        "embed",
        str(d),
        "-c",
        str(tmp_path / "c.h5"),
        *MODEL,
        "-b",
        "1",
        "--format",
        "jsonl",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # SIGINT back to its default in the child: a test run started in the background (nohup, `cmd &`) inherits an
    # ignored SIGINT, and Python keeps it ignored, so the Ctrl-C test would see the run finish instead.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    journal = tmp_path / "c.h5.journal"
    t0 = time.time()
    while time.time() - t0 < 120 and proc.poll() is None:
        if journal.is_dir() and len(list(journal.glob("*.npz"))) >= journal_files:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "embed finished before it could be interrupted: use more inputs"
    return proc, cmd, env, journal


@pytest.mark.slow
def test_sigkill_mid_run_keeps_finished_entries_and_rerun_completes(tmp_path):
    proc, cmd, env, _ = _start_embed_and_wait(tmp_path, 60, 5, roll_axis=0)
    cache = tmp_path / "c.h5"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with EmbeddingCache.open(cache) as c:
        assert c.verify() == []
        (key,) = c.models()
        done = set(c.get(key)[0])
    assert 5 <= len(done) < 60
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert {x["id"] for x in rows if x["status"] == "cached"} == done
    assert sum(x["status"] == "embedded" for x in rows) == 60 - len(done)
    assert subprocess.run([sys.executable, "-m", "ctvl_cli", "cache", "verify", str(cache)]).returncode == 0


@pytest.mark.slow
def test_ctrl_c_commits_finished_work_and_exits_130(tmp_path):
    proc, _, _, journal = _start_embed_and_wait(tmp_path, 40, 3, roll_axis=1)
    cache = tmp_path / "c.h5"
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not list(journal.glob("*.npz"))  # the journal was folded into the .h5 on the way out
    with EmbeddingCache.open(cache) as c:
        assert c.verify() == []
        (key,) = c.models()
        assert len(c.get(key)[0]) >= 3


@pytest.mark.integration
def test_real_scans_nifti_and_dicom(runner, shared, tmp_path):
    d = tmp_path / "real"
    d.mkdir()
    shutil.copy(shared("data", "lung_pet_ct_dx", "A0002_chest_ct.nii.gz"), d)
    shutil.copytree(shared("data", "lung_pet_ct_dx", "A0002_thorax_8mm_B40f_dicom"), d / "A0002_dicom")
    r = runner.invoke(app, ["embed", str(d), "-c", str(tmp_path / "c.h5"), *MODEL, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    rows = _json(r)
    assert len(rows) == 2 and {x["status"] for x in rows} == {"embedded"}
    _, entries, recs = _cache_entries(tmp_path / "c.h5")
    nii, dcm = (entries[x["id"]] for x in sorted(recs, key=lambda x: x["name"], reverse=True))
    assert np.allclose(nii, dcm, atol=1e-5)  # the same scan, two formats
