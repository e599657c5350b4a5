"""`finetune clip --lr-mult`: per-prefix learning-rate factors (optimizer groups that survive a resume)."""

from __future__ import annotations

import pytest

from tests.helpers import cli_json


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    from ctvl_cli.phantom import write_phantoms

    d = tmp_path_factory.mktemp("phg")
    write_phantoms(d, n=8, seed=21)
    return d


def test_lr_mult_scales_groups_and_resumes(runner, small_set, tmp_path):
    """text=0: the text tower gets a zero learning rate (no update, no weight decay) while the image tower
    trains at the full rate; the factors live in the checkpoint's optimizer groups, so an interrupted run resumes
    to the same weights as an uninterrupted one; bad values are one-line usage errors."""
    import torch
    from safetensors.torch import load_file

    from ctvl_cli.cli.app import app

    args = ["finetune", "clip", "--pairs", str(small_set / "pairs.csv"), "--model", "ctvl-tiny-test", "-b", "4",
            "--no-text-aug", "-j", "0", "--device", "cpu", "-f", "json", "--epochs", "2", "--lr", "3e-3",
            "--warmup", "0", "--save-every", "1", "--lr-mult", "text=0,tok=0,visual=0.5"]  # fmt: skip
    a, b = tmp_path / "a", tmp_path / "b"
    cli_json(runner.invoke(app, [*args, "--out", str(a)]))
    assert runner.invoke(app, [*args, "--out", str(b), "--stop-after", "2"]).exit_code == 130
    out = cli_json(
        runner.invoke(app, ["finetune", "clip", "--out", str(b), "--resume", "-f", "json", "-j", "0"])
    )
    assert out["resumed_from_step"] == 2 and out["steps"] == 4
    from ctvl_cli.models.factory import create_model
    from ctvl_cli.registry.weights import resolve_card_and_weights

    card, w0, _ = resolve_card_and_weights("ctvl-tiny-test")
    start = create_model(card, weights_path=w0).state_dict()
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert all((wa[k] == wb[k]).all() for k in wa)  # resumed == uninterrupted
    for k in wa:
        moved = not torch.equal(wa[k], start[k])
        if k.startswith(("text.", "tok.")):
            assert not moved, k
    assert any(not torch.equal(wa[k], start[k]) for k in wa if k.startswith("visual."))
    state = torch.load(b / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert sorted({g["lr_scale"] for g in state["optimizer"]["param_groups"]}) == [0.0, 0.5, 1.0]
    assert state["config"]["lr_mult"] == {"text": 0.0, "tok": 0.0, "visual": 0.5}

    for bad, why in (("text", "not PREFIX=FACTOR"), ("text=-1", "not PREFIX=FACTOR"),
                     ("nosuch=2", "'nosuch' names no trainable parameter")):  # fmt: skip
        r = runner.invoke(app, [*args[:-1], bad, "--out", str(tmp_path / "bad")])
        assert r.exit_code == 2 and why in r.stderr, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


def test_label_input_embedding_trains_the_projection(runner, small_set, tmp_path):
    """--label-input embedding: the --labels head reads the embedding, so with the tower frozen and the contrastive
    loss off its loss still reaches visual_proj; with the default (pooled trunk features) nothing of the model moves.
    The head's width follows the input (128 = embedding, 256 = pooled avg+max); an unknown value exits 2."""
    import torch
    from safetensors.torch import load_file

    from ctvl_cli.cli.app import app

    args = ["finetune", "clip", "--pairs", str(small_set / "pairs.csv"), "--model", "ctvl-phantom", "-b", "4",
            "--no-text-aug", "-j", "0", "--device", "cpu", "-f", "json", "--epochs", "1", "--lr", "1e-2",
            "--warmup", "0", "--labels", str(small_set / "labels.csv"), "--label-weight", "5", "--clip-weight", "0",
            "--freeze", "visual"]  # fmt: skip
    start = load_file(str(__import__("ctvl_cli").__path__[0] + "/weights/ctvl-phantom.safetensors"))
    moved = {}
    for mode in ("pooled", "embedding"):
        run = tmp_path / mode
        cli_json(runner.invoke(app, [*args, "--label-input", mode, "--out", str(run)]))
        w = load_file(str(run / "model.safetensors"))
        moved[mode] = (w["visual_proj.weight"] - start["visual_proj.weight"].float()).abs().max().item()
        state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
        assert state["aux_head"]["weight"].shape == (18, 128 if mode == "embedding" else 256)
    assert moved["pooled"] < 2e-3 < moved["embedding"], moved  # 2e-3: the packaged weights are float16
    r = runner.invoke(app, [*args, "--label-input", "logits", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "--label-input 'logits'" in r.stderr, r.stderr
