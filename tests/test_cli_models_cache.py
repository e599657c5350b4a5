"""`ctvl models` and `ctvl cache` through the CLI."""

from __future__ import annotations

import csv
import io
import json

from ctvl_cli.cli.app import app
from tests.helpers import phantom_array, write_nifti


def test_models_list_formats(runner):
    r = runner.invoke(app, ["models", "list", "--format", "json"])
    assert r.exit_code == 0 and r.stderr == ""
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert rows["ctvl-tiny-test"]["available"] is True and rows["ctvl-tiny-test"]["dim"] == 32
    assert rows["ct-clip"]["available"] is True and rows["ct-clip"]["weights"] == "missing"
    assert rows["ctvl-phantom"]["available"] is True and rows["ctvl-phantom"]["dim"] == 128  # shipped default
    r = runner.invoke(app, ["models", "list", "--format", "csv"])
    assert {x["name"] for x in csv.DictReader(io.StringIO(r.stdout))} == set(rows)
    r = runner.invoke(app, ["models", "list", "--format", "jsonl"])
    assert len(r.stdout.splitlines()) == len(rows)


def test_models_info_shows_card(runner):
    r = runner.invoke(app, ["models", "info", "ct-clip", "--format", "json"])
    assert r.exit_code == 0
    info = json.loads(r.stdout)
    assert info["preprocess"]["spacing"] == [1.5, 0.75, 0.75] and info["preprocess"]["shape"] == [
        240,
        480,
        480,
    ]
    assert info["license"] == "CC-BY-NC-SA-4.0" and info["weights_status"] == "missing"
    assert info["weight_sources"]["0"]["repo"] == "ibrahimhamamci/CT-RATE"
    r = runner.invoke(app, ["models", "info", "ct-clip"])
    assert "CT-CLIP_v2.pt" in r.stdout


def test_models_pull_offline_fails_in_one_line(runner, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = runner.invoke(app, ["models", "pull", "merlin"])
    assert r.exit_code == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and "stanfordmimi/Merlin" in line and "put it at" in line


def test_models_pull_unreachable_hub_fails_fast_in_one_line(runner, monkeypatch):
    # not in offline mode: the hub host is probed first instead of letting huggingface_hub retry for ~20 s
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("CTVL_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.ctvl-test.invalid")
    r = runner.invoke(app, ["models", "pull", "merlin"])
    assert r.exit_code == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and "no network access to hub.ctvl-test.invalid" in line
    assert "stanfordmimi/Merlin" in line and "put it at" in line and "weights/merlin/" in line


def test_models_unknown_name_exit_2(runner):
    r = runner.invoke(app, ["models", "info", "merlinn"])
    assert r.exit_code == 2 and "did you mean merlin" in r.stderr


def test_cache_commands(runner, tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    for i in range(2):
        write_nifti(d / f"v{i}.nii.gz", phantom_array(seed=i))
    cache = tmp_path / "c.h5"
    assert runner.invoke(app, ["embed", str(d), "-c", str(cache), "--model", "ctvl-tiny-test"]).exit_code == 0
    r = runner.invoke(app, ["cache", "info", str(cache), "--format", "json"])
    info = json.loads(r.stdout)
    assert info["models"][0]["images"] == 2 and info["models"][0]["model"] == "ctvl-tiny-test"
    r = runner.invoke(app, ["cache", "ls", str(cache), "--format", "json"])
    assert sorted(x["name"] for x in json.loads(r.stdout)) == ["v0", "v1"]
    r = runner.invoke(app, ["cache", "ls", str(cache), "--kind", "text", "--format", "json"])
    assert json.loads(r.stdout) == []
    r = runner.invoke(app, ["cache", "verify", str(cache), "--sources", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == []
    write_nifti(d / "v1.nii.gz", phantom_array(seed=99))  # the input changed after embedding
    r = runner.invoke(app, ["cache", "verify", str(cache), "--sources", "--format", "json"])
    assert r.exit_code == 1 and "changed since it was embedded" in json.loads(r.stdout)[0]["problem"]
    (tmp_path / "junk.h5").write_bytes(b"junk")
    r = runner.invoke(app, ["cache", "info", str(tmp_path / "junk.h5")])
    assert r.exit_code == 1 and "not a readable HDF5 cache" in r.stderr
