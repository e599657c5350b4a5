"""small-clip's skip path (``skip_stage``): the maximum of a 1x1x1 convolution on a finer stage's map, projected
into the embedding; added to existing weights with ``finetune clip --arch-param``, where the ``--masks`` loss on
that stage trains the path's own convolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli_json, run_history

SMALL = dict(embed_dim=16, widths=(4, 8, 8, 16), vocab_size=10, norm="gn", first_res=False)
SKIP_KEYS = ("skip_stage", "skip_dim", "skip_branch")


@pytest.fixture(scope="module")
def no_path(tmp_path_factory):
    """A model directory holding ctvl-phantom without its detector branch (weights and card): what a small-clip
    trained before the skip path existed looks like. -> (directory, its weights)."""
    import json

    from safetensors.torch import load_file, save_file

    import ctvl_cli
    from ctvl_cli.registry import resolve_card
    from ctvl_cli.registry.weights import sha256_file

    d = tmp_path_factory.mktemp("nopath")
    w = load_file(str(Path(ctvl_cli.__path__[0]) / "weights" / "ctvl-phantom.safetensors"))
    w = {k: v for k, v in w.items() if k.split(".")[0] not in ("skip", "skip_proj", "skip_trunk")}
    save_file(w, str(d / "model.safetensors"))
    card = resolve_card("ctvl-phantom").to_dict()
    params = {k: v for k, v in card["architecture"]["params"].items() if k not in SKIP_KEYS}
    card.update(
        name="nopath",
        architecture={"arch": "small-clip", "params": params},
        weights=[
            {"kind": "local", "path": "model.safetensors", "sha256": sha256_file(d / "model.safetensors")}
        ],
    )
    (d / "ctvl_card.json").write_text(json.dumps(card))
    return d, w


def test_skip_path_starts_at_zero_and_reads_the_finer_map():
    """Zero-initialised: the embedding of a model with the path equals the one without it (same trunk weights);
    once its projection is non-zero, a change confined to one cell of the stage-1 map's maximum moves the
    embedding; regions pool both maps (an all-ones region is the whole-scan embedding)."""
    import torch

    from ctvl_cli.models.small import SmallClip, optional_keys

    torch.manual_seed(0)
    base = SmallClip(**SMALL).eval()
    skip = SmallClip(**SMALL, skip_stage=1, skip_dim=3).eval()
    res = skip.load_state_dict(base.state_dict(), strict=False)
    assert sorted(res.missing_keys) == sorted(optional_keys(skip)) == [
        "skip.bias", "skip.weight", "skip_proj.bias", "skip_proj.weight"
    ]  # fmt: skip
    x = torch.randn(2, 1, 32, 32, 32)
    with torch.no_grad():
        assert torch.allclose(base.encode_image(x), skip.encode_image(x), atol=1e-6)
        torch.nn.init.normal_(skip.skip_proj.weight)
        e = skip.encode_image(x)
        assert not torch.allclose(base.encode_image(x), e, atol=1e-3)
        w = torch.ones(2, 2, 32, 32, 32)
        w[:, 1, :16] = 0  # second region: half of the volume
        r = skip.encode_regions(x, w)
        assert r.shape == (2, 2, 16) and torch.allclose(r[:, 0], e, atol=1e-5)
        assert not torch.allclose(r[:, 1], e, atol=1e-3)
    with pytest.raises(ValueError, match="skip_stage"):
        SmallClip(**SMALL, skip_stage=3)  # the last stage is already pooled


def test_skip_branch_starts_as_a_copy_of_the_trunk(tmp_path):
    """skip_branch: the path reads its own stages 0..K. Loaded from weights without them (create_model with
    allow_new), they start as the trunk's, so the path sees the same map; with the path's projection non-zero
    the embedding then depends on the branch: changing only the branch moves it, the trunk stays untouched.
    Without allow_new, weights lacking the branch are refused."""
    import torch
    from safetensors.torch import save_file

    from ctvl_cli.errors import CtvlError
    from ctvl_cli.models.factory import create_model
    from ctvl_cli.models.small import SmallClip
    from ctvl_cli.registry import resolve_card
    from ctvl_cli.registry.schema import parse_card

    torch.manual_seed(0)
    base = SmallClip(**{**SMALL, "norm": "bn"}).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a copy that missed buffers would show
        for mod in base.modules():
            if isinstance(mod, torch.nn.BatchNorm3d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    w = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, str(w))
    params = {**SMALL, "widths": list(SMALL["widths"]), "norm": "bn", "skip_stage": 1, "skip_branch": True}
    d = resolve_card("ctvl-phantom").to_dict()  # its preprocessing and text; this architecture and file
    d.update(architecture={"arch": "small-clip", "params": params}, embed_dim=16,
             weights=[{"kind": "local", "path": str(w)}])  # fmt: skip
    card = parse_card(d, where="test")
    with pytest.raises(CtvlError, match="missing"):
        create_model(card, weights_path=w)
    m = create_model(card, weights_path=w, allow_new=True)
    x = torch.randn(2, 1, 32, 32, 32)
    with torch.no_grad():
        maps = m.image_stage_maps(x)
        assert torch.allclose(m._skip_input(x, None), maps[1], atol=1e-6)
        assert torch.allclose(m.encode_image(x), base.encode_image(x), atol=1e-6)
        _, _, fmap = m.encode_image_pooled(x, with_map=True, map_stage=1)
        torch.nn.init.normal_(m.skip_proj.weight)
        e = m.encode_image(x)
        m.skip_trunk[1].down[0].weight.mul_(1.5)
        assert not torch.allclose(m.encode_image(x), e, atol=1e-4)
        assert torch.allclose(m.image_stage_maps(x)[1], maps[1])  # the trunk's own map did not move
        _, _, fmap2 = m.encode_image_pooled(x, with_map=True, map_stage=1)
    assert torch.allclose(fmap, maps[1], atol=1e-6) and not torch.allclose(fmap2, maps[1], atol=1e-4)


def test_finetune_adds_a_skip_path_to_existing_weights(runner, no_path, tmp_path):
    """--arch-param skip_stage=1 on a small-clip without the path: the run starts from its weights (new parameters only
    for the path), the --masks loss on stage 1 trains the path's convolution (tied: the checkpoint's mask head is
    that convolution's first channels), the run resumes and the exported model carries the path and its card
    parameter, so `--model RUN` embeds with it. Bad --arch-param values are one-line usage errors."""
    import torch
    from safetensors.torch import load_file

    from ctvl_cli.cli.app import app
    from ctvl_cli.phantom import write_phantoms

    data = tmp_path / "ph"
    write_phantoms(data, n=8, seed=11, masks=True)
    base = ["finetune", "clip", "--pairs", str(data / "pairs.csv"), "--model", str(no_path[0]), "-b", "4",
            "--no-text-aug", "-j", "0", "--device", "cpu", "-f", "json", "--labels", str(data / "labels.csv"),
            "--label-weight", "0"]  # fmt: skip
    run = tmp_path / "run"
    args = [*base, "--arch-param", "skip_stage=1", "--arch-param", "skip_dim=4", "--masks", str(data / "masks"),
            "--mask-stage", "1", "--mask-labels", "Lung nodule,Cardiomegaly", "--mask-weight", "5",
            "--mask-pos-weight", "4", "--epochs", "4", "--lr", "3e-3", "--warmup", "0"]  # fmt: skip
    r = runner.invoke(app, [*args, "--out", str(run), "--stop-after", "4"])
    assert r.exit_code == 130, r.stderr
    out = cli_json(
        runner.invoke(app, ["finetune", "clip", "--out", str(run), "--resume", "-f", "json", "-j", "0"])
    )
    assert out["resumed_from_step"] == 4 and out["steps"] == 8
    h = run_history(run)
    assert h[-1]["mask_loss"] < h[0]["mask_loss"], (h[0], h[-1])
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["config"]["arch_params"] == {"skip_stage": 1, "skip_dim": 4}
    assert torch.equal(state["mask_head"]["conv.weight"], state["model"]["skip.weight"])
    w = load_file(str(run / "model.safetensors"))
    assert w["skip.weight"].shape == (4, 32, 1, 1, 1) and w["skip_proj.weight"].abs().sum() > 0
    assert set(w) - set(no_path[1]) == {"skip.weight", "skip.bias", "skip_proj.weight", "skip_proj.bias"}
    card = __import__("json").loads((run / "ctvl_card.json").read_text())
    assert card["architecture"]["params"]["skip_stage"] == 1
    labels = tmp_path / "labels.txt"
    labels.write_text("Lung nodule\nCardiomegaly\n")
    r = runner.invoke(app, ["zeroshot", str(data / "phantom_11_000000.nii.gz"), "--labels", str(labels),
                            "--model", str(run), "-f", "json"])  # fmt: skip
    assert r.exit_code == 0 and "Lung nodule" in r.stdout, r.stderr
    cli_json(r)

    for bad, why in (("skip_stage=3", "skip_stage must name a stage"), ("nosuch=1", "nosuch"),
                     ("embed_dim=64", "--arch-param"), ("skip_stage", "not KEY=VALUE")):  # fmt: skip
        r = runner.invoke(app, [*base, "--out", str(tmp_path / "bad"), "--arch-param", bad])
        assert r.exit_code == 2 and why in r.stderr, (bad, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_detector_branch_then_alignment(runner, no_path, tmp_path):
    """The two phases `make train-default` ends with. (1) --arch-param skip_branch=true --clip-weight 0 with all but
    the branch frozen: the branch (a copy of stages 0-1 at the start) and the skip convolution learn from the
    --masks loss; the trunk, its BatchNorm statistics and the text tower stay as they were. (2) From that run,
    --freeze visual,skip_trunk,skip: the image towers stay exactly as phase 1 left them while the projection of the
    branch's maxima (skip_proj) and the text tower learn. A prefix naming no parameter is a one-line usage error."""
    from safetensors.torch import load_file

    from ctvl_cli.cli.app import app
    from ctvl_cli.phantom import write_phantoms

    data = tmp_path / "ph"
    write_phantoms(data, n=8, seed=12, masks=True)
    base = ["finetune", "clip", "--pairs", str(data / "pairs.csv"), "-b", "4", "--no-text-aug", "-j", "0",
            "--device", "cpu", "-f", "json", "--labels", str(data / "labels.csv"), "--label-weight", "0",
            "--epochs", "1", "--lr", "3e-3", "--warmup", "0"]  # fmt: skip
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    rest = "visual,visual_proj,skip_proj,tok,pos,text,text_norm,text_proj,log_scale"
    cli_json(runner.invoke(app, [*base, "--model", str(no_path[0]), "--out", str(p1), "--arch-param",
                                 "skip_stage=1", "--arch-param", "skip_branch=true", "--clip-weight", "0",
                                 "--freeze", rest, "--masks", str(data / "masks"), "--mask-stage", "1",
                                 "--mask-labels", "Lung nodule,Lymphadenopathy"]))  # fmt: skip
    start = no_path[1]
    w1 = load_file(str(p1 / "model.safetensors"))

    def same(a, b, k, kb=None):
        return (a[k].float() - b[kb or k].float()).abs().max() < 2e-3  # the packaged weights are float16

    trunk = [k for k in start if k.startswith("visual.")]
    assert len(trunk) > 20 and all(same(start, w1, k) for k in trunk)  # weights and BatchNorm statistics
    for k in ("visual_proj.weight", "text_proj.weight", "tok.weight"):
        assert same(start, w1, k), k
    assert w1["skip_proj.weight"].abs().max() == 0
    # the branch started as stages 0-1 of the trunk and moved (weights and statistics)
    assert {k[len("skip_trunk.") :] for k in w1 if k.startswith("skip_trunk.")} == {
        k[len("visual.") :] for k in trunk if k.split(".")[1] in ("0", "1")
    }
    assert not same(w1, w1, "skip_trunk.1.down.0.weight", "visual.1.down.0.weight")
    assert not same(w1, w1, "skip_trunk.0.down.1.running_var", "visual.0.down.1.running_var")

    cli_json(runner.invoke(app, [*base, "--model", str(p1), "--out", str(p2), "--prompt-weight", "1",
                                 "--freeze", "visual,skip_trunk,skip"]))  # fmt: skip
    w2 = load_file(str(p2 / "model.safetensors"))
    for k in w1:
        if k.split(".")[0] in ("visual", "skip_trunk", "skip"):
            assert (w1[k] == w2[k]).all(), k
    assert (
        w2["skip_proj.weight"].abs().max() > 0
        and not (w1["text_proj.weight"] == w2["text_proj.weight"]).all()
    )

    r = runner.invoke(
        app, [*base, "--model", str(p1), "--out", str(tmp_path / "bad"), "--freeze", "visual.9"]
    )
    assert r.exit_code == 2 and "--freeze: 'visual.9' names no parameter" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
