"""Region pooling of every architecture: an all-ones mask reproduces encode_image; a mask picks its own region."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import shared_path


def _check(model, shape, atol=1e-5, halves=True):
    torch.manual_seed(0)
    model.eval()
    x = torch.randn(2, 1, *shape)
    ones = torch.ones(2, 1, *shape)
    with torch.no_grad():
        full = model.encode_image(x)
        reg = model.encode_regions(x, ones)
        assert reg.shape == (2, 1, full.shape[-1])
        assert torch.allclose(reg[:, 0], full, atol=atol), (reg[:, 0] - full).abs().max()
        if not halves:
            return  # two complementary halves give two different embeddings, neither equal to the whole
        half = torch.zeros(2, 2, *shape)
        half[:, 0, : shape[0] // 2] = 1
        half[:, 1, shape[0] // 2 :] = 1
        two = model.encode_regions(x, half)
    assert two.shape == (2, 2, full.shape[-1])
    assert not torch.allclose(two[:, 0], two[:, 1], atol=1e-4)
    assert not torch.allclose(two[:, 0], full, atol=1e-4)


def test_tiny_and_small_clip():
    from ctvl_cli.models.factory import create_model_and_transforms

    for name in ("ctvl-tiny-test", "ctvl-phantom"):
        model, _, _, card = create_model_and_transforms(name)
        _check(model, card.preprocess.shape)


def test_resnet18_clip():
    from ctvl_cli.models.resnet3d import build

    model = build({"text_config": {"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
                                   "intermediate_size": 64, "vocab_size": 100}})  # fmt: skip
    _check(model, (64, 64, 32))


def test_merlin_and_i3d_image_follow_the_trunk_axis_order():
    from ctvl_cli.models.merlin import build

    for variant in ("merlin", "i3d-image"):
        _check(build({"variant": variant, "text": False, "blocks": [1, 1, 1, 1]}), (64, 64, 32), atol=1e-4)


@pytest.mark.parity
def test_ctclip_reduced():
    from ctvl_cli.models.ctclip import build

    meta = json.loads(shared_path("parity", "ctclip_v2_small.json").read_text())
    bert = {k: v for k, v in meta["bert_config"].items() if "dropout" not in k}
    c = meta["ctclip_config"]
    model = build(
        {
            "ctvit": meta["ctvit_config"],
            "bert": bert,
            **{k: c[k] for k in ("dim_image", "dim_text", "dim_latent")},
        }
    )
    from tests.helpers import fill_value

    with torch.no_grad():  # random init leaves the latent projection at zero: use the parity fill instead
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                v.copy_(fill_value(k, tuple(v.shape)))
    # under the fill the VQ codebook maps every token to one code, so two halves of the input look alike: the
    # half-mask property is checked on a random token grid instead
    _check(model, tuple(meta["input_image"]["shape"][2:]), atol=1e-4, halves=False)
    f = torch.randn(1, meta["ctvit_config"]["dim"], 4, 3, 3)
    w = torch.zeros(1, 2, 4, 3, 3)
    w[:, 0, :, :, :1], w[:, 1, :, :, 1:] = 1, 1
    with torch.no_grad():
        two = model.pool_regions(f, w)
        whole = model.pool_regions(f, torch.ones(1, 1, 4, 3, 3))[:, 0]
        ref = torch.nn.functional.normalize(
            model.core.to_visual_latent(f.mean(2).permute(0, 2, 3, 1).reshape(1, -1)), dim=-1
        )
    assert torch.allclose(whole, ref, atol=1e-5)
    assert not torch.allclose(two[:, 0], two[:, 1], atol=1e-4)
