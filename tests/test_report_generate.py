"""`ctvl finetune report` and `ctvl generate-report` end to end on tiny phantoms (CPU), with tiny randomly
initialised causal LMs built locally from a config and ctvl's packaged phantom tokenizer (no downloads): loss goes
down, the run directory is a report model, resume is exact, frozen/LoRA/from-scratch LMs, greedy/beam/sampling
decoding, the template and retrieval methods, and batch failures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from helpers import run_history, tiny_lm_dir

from ctvl_cli.cli.app import app


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from ctvl_cli.phantom import write_phantoms

    d = tmp_path_factory.mktemp("rep")
    write_phantoms(d / "ph", n=8, seed=7)
    tiny_lm_dir(d / "lm_cfg", arch="gpt2")  # config only: trained from scratch
    tiny_lm_dir(d / "lm_llama", arch="llama", weights=True)  # "pretrained" (random weights saved)
    return d


COMMON = ["-b", "4", "--max-len", "96", "-j", "0", "--device", "cpu", "--warmup", "0", "-f", "json"]


def _ok(runner, *args):
    r = runner.invoke(app, list(args))
    assert r.exit_code == 0, r.stderr
    return r


def _tensors(run: Path) -> dict:
    from safetensors.torch import load_file

    out = {f"projector.{k}": v for k, v in load_file(str(run / "projector.safetensors")).items()}
    if (run / "llm").is_dir():
        out.update({f"llm.{k}": v for k, v in load_file(str(run / "llm" / "model.safetensors")).items()})
    return out


@pytest.fixture(scope="module")
def scratch_run(world, tmp_path_factory):
    from typer.testing import CliRunner

    run = tmp_path_factory.mktemp("runs") / "scratch"
    args = ["finetune", "report", "--pairs", str(world / "ph" / "pairs.csv"), "--llm", str(world / "lm_cfg")]
    args += ["--out", str(run), "--epochs", "10", "--lr", "3e-3", *COMMON]
    args += ["--val-pairs", str(world / "ph" / "pairs.csv"), "--val-max", "4"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.stderr
    return run, json.loads(r.stdout)


def test_scratch_lm_loss_decreases_and_run_dir_is_a_report_model(scratch_run):
    run, out = scratch_run
    assert out["steps"] == 20 and out["epochs_done"] == 10 and out["llm_train"] == "full"
    assert out["metric"] == "val_ce_f1"
    h = run_history(run)
    assert len(h) == 10 and all("val_loss" in r and "val_ce_f1" in r for r in h)
    assert h[-1]["loss"] < 0.75 * h[0]["loss"], (h[0]["loss"], h[-1]["loss"])
    assert h[-1]["val_loss"] < h[0]["val_loss"]
    card = json.loads((run / "report_card.json").read_text())
    assert card["format"] == "ctvl-report-model/1" and card["encoder"]["name"] == "ctvl-phantom"
    assert card["projector"]["kind"] == "attn" and card["llm"]["init"] == "config"
    assert (run / "llm" / "config.json").is_file() and (run / "tokenizer").is_dir()


def test_generate_lm_decodings_batch_and_failures(runner, world, scratch_run, tmp_path):
    run, _ = scratch_run
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a volume")
    scans = [str(world / "ph" / f"phantom_7_00000{i}.nii.gz") for i in range(3)]
    base = ["generate-report", *scans, str(bad), "--model", str(run), "--max-new-tokens", "24", "-b", "2"]
    for extra in (["--decoding", "greedy"], ["--decoding", "beam", "--beams", "3"], ["--decoding", "sample", "--seed", "1"]):  # fmt: skip
        r = runner.invoke(app, [*base, *extra, "-f", "json"])
        assert r.exit_code == 1, r.stderr  # one input failed: the rest is written, exit 1
        recs = json.loads(r.stdout)
        assert [x["id"] for x in recs] == [f"phantom_7_00000{i}" for i in range(3)]
        assert {x["method"] for x in recs} == {"lm"} and {x["model"] for x in recs} == {"scratch"}
        assert all(isinstance(x["report"], str) and x["report"] for x in recs)
        assert "broken.nii.gz" in r.stderr and "1 scan(s) failed" in r.stderr
    # greedy is deterministic; batch size does not change it
    g1 = runner.invoke(app, [*base[:-2], "-b", "1", "-f", "jsonl"])
    g3 = runner.invoke(app, [*base[:-2], "-b", "3", "-f", "jsonl"])
    assert g1.stdout == g3.stdout and len(g1.stdout.splitlines()) == 3
    r = runner.invoke(
        app, ["generate-report", *scans[:2], "--model", str(run), "--max-new-tokens", "8", "-f", "csv"]
    )
    assert r.exit_code == 0, r.stderr
    rows = list(csv.DictReader(r.stdout.splitlines()))
    assert len(rows) == 2 and set(rows[0]) == {"id", "method", "model", "report", "source", "note"}


def test_resume_is_exact(runner, world, tmp_path):
    """Interrupted after 3 of 6 steps (mid-epoch) and resumed == the uninterrupted run, bit for bit."""
    import torch

    common = ["--pairs", str(world / "ph" / "pairs.csv"), "--llm", str(world / "lm_cfg"), "--epochs", "3"]
    common += ["--save-every", "1", *COMMON]
    _ok(runner, "finetune", "report", "--out", str(tmp_path / "a"), *common)
    r = runner.invoke(app, ["finetune", "report", "--out", str(tmp_path / "b"), *common, "--stop-after", "3"])
    assert r.exit_code == 130 and "--resume" in r.stderr
    out = json.loads(
        _ok(runner, "finetune", "report", "--out", str(tmp_path / "b"), "--resume", "-f", "json").stdout
    )
    assert out["resumed_from_step"] == 3 and out["steps"] == 6
    a, b = _tensors(tmp_path / "a"), _tensors(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    r = runner.invoke(app, ["finetune", "report", "--out", str(tmp_path / "a"), *common])
    assert r.exit_code == 2 and "--resume" in r.stderr and r.stdout == ""


def test_pretrained_local_llm_frozen_then_lora(runner, world, tmp_path):
    pytest.importorskip("peft", reason="LoRA needs the `lora` extra (installed by make install)")
    import torch
    from safetensors.torch import load_file

    llm = world / "lm_llama"
    base = ["--pairs", str(world / "ph" / "pairs.csv"), "--llm", str(llm), "--epochs", "4", "--lr", "3e-3"]
    out = json.loads(
        _ok(
            runner, "finetune", "report", "--out", str(tmp_path / "fz"), *base, "--projector", "pool", *COMMON
        ).stdout
    )
    assert out["llm_train"] == "frozen"
    h = run_history(tmp_path / "fz")
    assert h[-1]["loss"] < h[0]["loss"]
    assert not (tmp_path / "fz" / "llm").exists() and not (tmp_path / "fz" / "lora").exists()
    card = json.loads((tmp_path / "fz" / "report_card.json").read_text())
    assert card["llm"]["source"] == str(llm) and card["projector"]["kind"] == "pool"
    out = json.loads(
        _ok(
            runner, "finetune", "report", "--out", str(tmp_path / "lo"), *base, "--llm-train", "lora", *COMMON
        ).stdout
    )
    assert out["llm_train"] == "lora" and (tmp_path / "lo" / "lora" / "adapter_config.json").is_file()
    h = run_history(tmp_path / "lo")
    assert h[-1]["loss"] < h[0]["loss"]
    before = load_file(str(llm / "model.safetensors"))
    assert all(torch.equal(before[k], v) for k, v in load_file(str(llm / "model.safetensors")).items())
    scan = str(world / "ph" / "phantom_7_000004.nii.gz")
    for run in ("fz", "lo"):
        r = _ok(
            runner,
            "generate-report",
            scan,
            "--model",
            str(tmp_path / run),
            "--max-new-tokens",
            "8",
            "-f",
            "json",
        )
        assert json.loads(r.stdout)[0]["model"] == run


def test_usage_errors(runner, world, tmp_path):
    r = runner.invoke(app, ["finetune", "report", "--out", str(tmp_path / "x"), "--pairs", str(world / "ph" / "pairs.csv")])  # fmt: skip
    assert r.exit_code == 2 and "--llm" in r.stderr and r.stdout == ""
    r = runner.invoke(app, ["finetune", "report", "--out", str(tmp_path / "x"), "--pairs", str(world / "ph" / "pairs.csv"), "--llm", "no-such-org/no-such-lm", "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 2 and "cannot load" in r.stderr and r.stderr.count("\n") == 1
    r = runner.invoke(app, ["finetune", "report", "--out", str(tmp_path / "x"), "--pairs", str(world / "ph" / "pairs.csv"), "--llm", str(world / "lm_cfg"), "--llm-train", "frozen"])  # fmt: skip
    assert r.exit_code == 2 and "--llm-train full" in r.stderr
    scan = str(world / "ph" / "phantom_7_000000.nii.gz")
    r = runner.invoke(app, ["generate-report", scan, "--model", str(tmp_path)])
    assert r.exit_code == 2 and "not a report model directory" in r.stderr
    r = runner.invoke(app, ["generate-report", scan, "--method", "nope"])
    assert r.exit_code == 2 and "unknown --method" in r.stderr
    r = runner.invoke(app, ["generate-report", scan, "--method", "retrieval"])
    assert r.exit_code == 2 and "--index" in r.stderr


def test_template_and_retrieval_methods(runner, world, tmp_path):
    from ctvl_cli.reports.labeler import label_report

    ph = world / "ph"
    cache, idx = tmp_path / "emb.h5", tmp_path / "idx"
    r = _ok(runner, "generate-report", str(ph), "--method", "template", "--cache", str(cache), "-f", "json")
    recs = json.loads(r.stdout)
    assert (
        len(recs) == 8 and {x["method"] for x in recs} == {"template"} and recs[0]["model"] == "ctvl-phantom"
    )
    for x in recs:  # the report states exactly the findings called present
        called = set(x["note"].removeprefix("positive: ").split(", ")) - {"none"}
        assert {f for f, v in label_report(x["report"]).items() if v} == called
    r = _ok(runner, "generate-report", str(ph), "--method", "template", "--threshold", "0.0", "-f", "json")
    assert all(x["note"].count(",") == 17 for x in json.loads(r.stdout))  # every finding called present
    # retrieval: an index without report texts is refused, one with them answers with a neighbour's report
    _ok(runner, "embed", str(ph), "--cache", str(cache))
    _ok(runner, "retrieve", "build", "--cache", str(cache), "--index", str(idx))
    r = runner.invoke(app, ["generate-report", str(ph), "--method", "retrieval", "--index", str(idx)])
    assert r.exit_code == 2 and "carries no report texts" in r.stderr
    r = _ok(runner, "retrieve", "build", "--cache", str(cache), "--index", str(idx), "--reports", str(ph / "reports.csv"), "--overwrite", "-f", "json")  # fmt: skip
    assert json.loads(r.stdout)["with_reports"] == 8
    texts = {row["VolumeName"].removesuffix(".nii.gz"): row["report_text"] for row in csv.DictReader((ph / "reports.csv").open())}  # fmt: skip
    scan = str(ph / "phantom_7_000003.nii.gz")
    r = _ok(runner, "generate-report", scan, "--method", "retrieval", "--index", str(idx), "--cache", str(cache), "--exclude-self", "-f", "json")  # fmt: skip
    rec = json.loads(r.stdout)[0]
    q = _ok(runner, "retrieve", "query", "--index", str(idx), "--image", scan, "--cache", str(cache), "--exclude-self", "-k", "1", "-f", "json")  # fmt: skip
    nn = json.loads(q.stdout)[0]["scan"]
    assert nn != "phantom_7_000003" and rec["report"] == texts[nn] and nn in rec["note"]
    r = _ok(runner, "generate-report", scan, "--method", "retrieval", "--index", str(idx), "--cache", str(cache), "-f", "json")  # fmt: skip
    assert json.loads(r.stdout)[0]["report"] == texts["phantom_7_000003"]  # without --exclude-self: itself


def test_auto_method_without_packaged_report_model_is_template(runner, world, monkeypatch, tmp_path):
    from ctvl_cli.reports import model as rm

    monkeypatch.setattr(rm, "packaged_dir", lambda: tmp_path / "absent")
    r = _ok(runner, "generate-report", str(world / "ph" / "phantom_7_000000.nii.gz"), "-f", "json")
    assert json.loads(r.stdout)[0]["method"] == "template" and "method template" in r.stderr
    r = runner.invoke(
        app, ["generate-report", str(world / "ph" / "phantom_7_000000.nii.gz"), "--method", "lm"]
    )
    assert r.exit_code == 2 and "make train-report-default" in r.stderr


def test_ctrl_c_writes_finished_reports(runner, world, scratch_run, monkeypatch):
    from ctvl_cli.reports import model as rm

    real, calls = rm.ReportLM.generate, []

    def flaky(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(rm.ReportLM, "generate", flaky)
    scans = [str(world / "ph" / f"phantom_7_00000{i}.nii.gz") for i in range(3)]
    r = runner.invoke(app, ["generate-report", *scans, "--model", str(scratch_run[0]), "-b", "1", "--max-new-tokens", "8", "-f", "jsonl"])  # fmt: skip
    assert r.exit_code == 130 and "interrupted" in r.stderr
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == ["phantom_7_000000"]


def test_decoded_reports_are_tidied():
    from ctvl_cli.reports.model import tidy

    assert tidy("No ground - glass  opacity . A 6 mm nodule ( right lower lobe ) , 10 % ") == (
        "No ground-glass opacity. A 6 mm nodule (right lower lobe), 10%"
    )
    assert tidy("T2 - weighted and / or 3 - 5 mm") == "T2-weighted and/or 3-5 mm"
