"""`ct-resnet18-clip`: GreenRFM's 3D ResNet-18 CLIP (r3d-18 layout, 1-channel stem, BERT text, bias-free linear
projections, learnable logit scale), and its training with `ctvl finetune clip`."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ctvl_cli.errors import InputError, UsageError
from ctvl_cli.models.resnet3d import build

SMALL_TEXT = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}


def test_architecture_layout_and_interface():
    torch.manual_seed(0)
    m = build({"dim_latent": 64, "text_config": SMALL_TEXT, "vocab_size": 100}).eval()
    sd = m.state_dict()
    # torchvision VideoResNet names (stem.0 conv, layerN.M.conv1.0 conv / conv1.1 BN, downsample only on change)
    assert sd["visual.stem.0.weight"].shape == (64, 1, 2, 2, 2)
    assert sd["visual.layer1.0.conv1.0.weight"].shape == (64, 64, 3, 3, 3)
    assert sd["visual.layer4.1.conv2.1.running_var"].shape == (512,)
    assert "visual.layer1.0.downsample.0.weight" not in sd and "visual.layer2.0.downsample.0.weight" in sd
    assert sd["to_visual_latent.weight"].shape == (64, 512) and "to_visual_latent.bias" not in sd
    assert sd["to_text_latent.weight"].shape == (64, 32) and "to_text_latent.bias" not in sd
    n_visual = sum(v.numel() for k, v in m.named_parameters() if k.startswith("visual."))
    # torchvision r3d_18 (num_params 33,371,472 in its weights metadata) minus fc (512*400+400) minus its 3-channel (3,7,7) stem + the 1-channel k=2 stem
    assert n_visual == 33_371_472 - (512 * 400 + 400) - 64 * 3 * 3 * 7 * 7 + 64 * 8
    assert math.isclose(float(m.logit_scale()), 1 / 0.07, rel_tol=1e-6)
    x = torch.randn(2, 1, 64, 64, 32)
    with torch.no_grad():
        fmap = m.image_feature_map(x)
        img = m.encode_image(x)
        ids = torch.tensor([[2, 5, 6, 7, 3, 0, 0], [2, 9, 3, 0, 0, 0, 0]])
        txt = m.encode_text(ids, (ids > 0).long())
        alone = m.encode_image(x[:1])
    assert fmap.shape == (2, 512, 4, 4, 2)  # stem /2, then stages 2-4 /2 each
    assert img.shape == txt.shape == (2, 64)
    assert torch.allclose(img.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(alone, img[:1], atol=1e-5)  # eval BatchNorm: rows independent
    with pytest.raises(InputError):
        m.encode_image(torch.randn(1, 3, 32, 32, 32))
    with pytest.raises(UsageError):
        build({"typo": 1})


def test_card_is_runnable_and_declares_greenrfm_preprocessing():
    from ctvl_cli.registry import resolve_card

    card = resolve_card("ct-resnet18-clip")
    assert card.available and card.arch == "resnet18-clip"
    p = card.preprocess
    assert p.spacing == (1.5, 1.5, 3.0) and p.hu_window == (-1000.0, 200.0) and p.output_range == (-1.0, 1.0)
    assert p.shape == (192, 192, 96) and card.tokenizer.max_length == 128
    assert "No public weights" in card.notes


@pytest.mark.slow
def test_finetune_clip_trains_it_and_the_run_is_a_model(runner, tmp_path):
    from ctvl_cli.cli.app import app
    from ctvl_cli.phantom import write_phantoms

    ph = tmp_path / "ph"
    write_phantoms(ph, n=4, seed=11)
    r = runner.invoke(
        app,
        [
            "finetune",
            "tokenizer",
            "--texts",
            str(ph / "reports.csv"),
            "--out",
            str(tmp_path / "tok"),
            "--vocab-size",
            "200",
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    run = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "finetune",
            "clip",
            "--model",
            "ct-resnet18-clip",
            "--scratch",
            "--tokenizer",
            str(tmp_path / "tok"),
            "--pairs",
            str(ph / "pairs.csv"),
            "--out",
            str(run),
            "-b",
            "2",
            "--epochs",
            "1",
            "--lr",
            "1e-4",
            "--warmup",
            "0",
            "--no-text-aug",
            "-j",
            "0",
            "--device",
            "cpu",
            "-f",
            "json",
        ],
    )
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["steps"] == 2 and math.isfinite(out["last_loss"])
    card = json.loads((run / "ctvl_card.json").read_text())
    assert card["architecture"]["arch"] == "resnet18-clip"
    assert card["architecture"]["params"]["vocab_size"] <= 200  # the trained tokenizer's vocabulary
    # the run directory works as a model: zero-shot scoring of a phantom with the trained weights and tokenizer
    (tmp_path / "labels.txt").write_text("Cardiomegaly\n")
    r = runner.invoke(
        app,
        [
            "zeroshot",
            str(ph / "phantom_11_000000.nii.gz"),
            "--model",
            str(run),
            "--labels",
            str(tmp_path / "labels.txt"),
            "-f",
            "jsonl",
        ],
    )
    assert r.exit_code == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 1 and 0.0 <= rows[0]["Cardiomegaly"] <= 1.0
