"""`python -m ctvl_cli.train.package_default RUN`: installs a training run as the embedded ctvl-phantom (float16
weights, their sha256 and size in the card, the tokenizer), into a copy of the package here."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest


def _package_copy(tmp_path: Path) -> Path:
    src = Path(str(resources.files("ctvl_cli")))
    root = tmp_path / "pkg"
    (root / "registry" / "cards").mkdir(parents=True)
    shutil.copy(src / "registry" / "cards" / "ctvl-phantom.json", root / "registry" / "cards")
    shutil.copytree(src / "tokenizers" / "phantom", root / "tokenizers" / "phantom")
    return root


def _run(tmp_path: Path, card: dict, *, tokenizer: bool) -> Path:
    import torch
    from safetensors.torch import save_file

    from ctvl_cli.models.small import build

    run = tmp_path / "run"
    run.mkdir()
    (run / "ctvl_card.json").write_text(json.dumps(card))
    torch.manual_seed(1)
    sd = {k: v.contiguous() for k, v in build(card["architecture"]["params"]).state_dict().items()}
    save_file(sd, str(run / "model.safetensors"), metadata={"format": "pt"})
    rows = [
        {"epoch": 0, "step": 10, "zs_auroc": 0.6, "r2i_R@5": 0.2},
        {"epoch": 1, "step": 20, "zs_auroc": 0.7},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if tokenizer:
        shutil.copytree(Path(str(resources.files("ctvl_cli"))) / "tokenizers" / "phantom", run / "tokenizer")
        (run / "tokenizer" / "marker.txt").write_text("from the run")
    return run


def test_package_a_run_that_went_on_from_the_packaged_model(tmp_path):
    """No tokenizer/ in the run (it read the packaged one): weights become float16 with their sha256 and size in
    the card, the packaged tokenizer stays, the notes name the best epoch and the second part."""
    from safetensors import safe_open

    from ctvl_cli.registry.weights import sha256_file
    from ctvl_cli.train.package_default import package

    root = _package_copy(tmp_path)
    card = json.loads((root / "registry" / "cards" / "ctvl-phantom.json").read_text())
    tok_before = (root / "tokenizers" / "phantom" / "tokenizer.json").read_bytes()
    out = package(_run(tmp_path, card, tokenizer=False), root=root)
    new = json.loads((root / "registry" / "cards" / "ctvl-phantom.json").read_text())
    w = root / card["weights"][0]["path"]
    assert out["sha256"] == new["weights"][0]["sha256"] == sha256_file(w)
    assert new["weights"][0]["size"] == w.stat().st_size
    with safe_open(str(w), framework="pt") as f:
        t = f.get_tensor("visual_proj.weight")
    assert str(t.dtype) == "torch.float16"
    assert (root / "tokenizers" / "phantom" / "tokenizer.json").read_bytes() == tok_before
    assert "epoch 1 of 2" in new["notes"] and "last part" in new["notes"] and "0.700" in new["notes"]


def test_package_a_run_with_its_own_tokenizer_and_refusals(tmp_path):
    """A run from scratch brings its tokenizer/, which replaces the packaged one; a run without tokenizer/ that
    used another tokenizer, or another architecture, is refused before anything is written."""
    from ctvl_cli.train.package_default import package

    root = _package_copy(tmp_path)
    card = json.loads((root / "registry" / "cards" / "ctvl-phantom.json").read_text())
    package(_run(tmp_path, card, tokenizer=True), root=root)
    assert (root / "tokenizers" / "phantom" / "marker.txt").read_text() == "from the run"
    assert (
        "second part"
        not in json.loads((root / "registry" / "cards" / "ctvl-phantom.json").read_text())["notes"]
    )

    before = (root / "registry" / "cards" / "ctvl-phantom.json").read_text()
    other = json.loads(json.dumps(card))
    other["text"]["tokenizer"]["name_or_path"] = "somewhere-else"
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(SystemExit, match="no tokenizer/"):
        package(_run(tmp_path, other, tokenizer=False), root=root)
    other = json.loads(json.dumps(card))
    other["architecture"]["params"]["embed_dim"] = 64
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(SystemExit, match="differ from the ctvl-phantom card"):
        package(_run(tmp_path, other, tokenizer=True), root=root)
    assert (root / "registry" / "cards" / "ctvl-phantom.json").read_text() == before
