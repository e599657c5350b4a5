"""CT-CLIP v2 against the official-code fixtures in ../shared/parity (README there): state_dict keys/shapes of the
full and reduced configs, every output and intermediate of the reduced CTCLIP (atol 2e-7, VQ indices exact), the
full-config forward (text atol 1e-6; pre-VQ summaries as the README recommends; latents with the stored VQ codes),
and the checkpoint layouts (position_ids key, ClassFine)."""

from __future__ import annotations

import json

import pytest
import torch

from ctvl_cli.models.ctclip import build, checkpoint_filter
from tests.conftest import shared_path
from tests.helpers import amax, fill_value, fixture_input

pytestmark = pytest.mark.parity


def _params(meta: dict, ctclip: dict) -> dict:
    bert = {k: v for k, v in meta["bert_config"].items() if "dropout" not in k}
    return {
        "ctvit": meta["ctvit_config"],
        "bert": bert,
        **{k: ctclip[k] for k in ("dim_image", "dim_text", "dim_latent")},
    }


def _run(model, x, ids, mask, vq_indices=None) -> dict:
    keep: dict = {}
    core = model.core
    with torch.no_grad():
        if (
            vq_indices is not None
        ):  # inject the official codes (full-size VQ is ill-conditioned under the fill)
            vit = core.visual_transformer
            keep["patch_tokens"] = vit.patch_tokens(x)
            pre = vit.encode(keep["patch_tokens"], keep=keep)
            enc = vit.vq._codebook.embed[0][vq_indices]
            keep["pre_vq_tokens"] = pre
            pooled = enc.mean(dim=1).reshape(enc.shape[0], -1)
            il = torch.nn.functional.normalize(core.to_visual_latent(pooled), dim=-1)
            keep["pooled_image_embeds"] = pooled
        else:
            il = core.image_latents(x, keep)
        tl = core.text_latents(ids, mask, keep)
    keep.update(image_latents=il, text_latents=tl, logits=(tl * il).sum(-1) * model.logit_scale())
    return keep


def test_reduced_ctclip_equals_official_outputs_and_intermediates():
    from safetensors.torch import load_file

    meta = json.loads(shared_path("parity", "ctclip_v2_small.json").read_text())
    model = build(_params(meta, meta["ctclip_config"])).eval()
    assert [(k, list(v.shape)) for k, v in model.official_state_dict().items()] == [
        (e["key"], e["shape"]) for e in meta["state_dict_manifest"]
    ]
    sd = load_file(str(shared_path("parity", "ctclip_v2_small.safetensors")))
    for k, v in sd.items():  # the fixture is the README's fill function, entry by entry
        assert torch.equal(v, fill_value(k, tuple(v.shape))) or k.endswith("num_batches_tracked"), k
    model.load_state_dict(checkpoint_filter(sd), strict=True)
    ref = load_file(str(shared_path("parity", "ctclip_v2_small_outputs.safetensors")))
    got = _run(model, fixture_input(meta["input_image"]["shape"]), ref["input_ids"], ref["attention_mask"])
    compared = 0
    for k, want in ref.items():
        if k in ("input_ids", "attention_mask", "vq_margin"):
            continue
        if k == "vq_indices":
            assert torch.equal(got[k], want)
        else:
            assert amax(got[k], want) <= 2e-7, k  # README: reduced CT-CLIP atol 2e-7
        compared += 1
    assert compared == 13


@pytest.mark.slow
def test_full_config_manifest_and_forward():
    from safetensors.torch import load_file

    man = json.loads(shared_path("parity", "ctclip_v2_full_manifest.json").read_text())
    fwd = load_file(str(shared_path("parity", "ctclip_v2_full_forward.safetensors")))
    assert man["num_entries"] == 361
    from ctvl_cli.registry import resolve_card

    card = resolve_card("ct-clip")
    with torch.device("meta"):
        meta_model = build(card.params)
    mine = [
        (k, list(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in meta_model.official_state_dict().items()
    ]
    assert mine == [(e["key"], e["shape"], e["dtype"]) for e in man["manifest"]]
    n = sum(p.numel() for p in meta_model.parameters())
    assert n == man["num_parameters"] == 438_148_761
    del meta_model
    model = build(card.params).eval()
    with torch.no_grad():
        for k, v in model.official_state_dict().items():
            v.copy_(fill_value(k, tuple(v.shape)).to(v.dtype))
    x = fixture_input((1, 1, 240, 480, 480))
    got = _run(model, x, fwd["input_ids"], fwd["attention_mask"], vq_indices=fwd["vq_indices"])
    # text side: tight (README: atol 1e-6)
    for k in ("text_hidden", "text_cls", "text_latents"):
        assert amax(got[k], fwd[k]) <= 1e-6, k
    # image path up to the VQ: per-token summaries (README: 5e-5 on channel sums, 2e-6 on norms, 1e-6 on tokens)
    pre = got["pre_vq_tokens"]
    assert amax(pre.sum(-1), fwd["pre_vq_channel_sum"]) <= 5e-5
    assert amax(pre.norm(dim=-1), fwd["pre_vq_norm"]) <= 2e-6
    assert amax(pre[0, 0, 0, 0], fwd["pre_vq_first_token"]) <= 1e-6
    assert amax(pre[0, -1, -1, -1], fwd["pre_vq_last_token"]) <= 1e-6
    assert amax(got["patch_tokens"][0, 0, 0, 0], fwd["patch_tokens_first_token"]) <= 1e-6
    assert amax(got["patch_tokens"].sum(-1), fwd["patch_tokens_channel_sum"]) <= 5e-5
    sp = got["spatial_transformer_out"]
    assert amax(sp.sum(-1), fwd["spatial_out_channel_sum"]) <= 5e-5
    assert amax(sp[0, 0, 0, 0], fwd["spatial_out_first_token"]) <= 1e-6
    assert amax(got["spatial_attn_bias"][:, 0], fwd["spatial_attn_bias_row0"]) <= 1e-6
    # with the official codes, the latents and logits follow tightly
    assert amax(got["pooled_image_embeds"][:, :64], fwd["pooled_image_embeds_first64"]) <= 1e-6
    assert amax(got["image_latents"], fwd["image_latents"]) <= 1e-6
    assert amax(got["logits"], fwd["logits"]) <= 1e-5


def test_checkpoint_layouts_position_ids_and_classfine():
    meta = json.loads(shared_path("parity", "ctclip_v2_small.json").read_text())
    params = _params(meta, meta["ctclip_config"])
    clip = build(params).eval()
    official = clip.official_state_dict()
    legacy = {**official, "text_transformer.embeddings.position_ids": torch.arange(64)[None]}
    clip.load_state_dict(checkpoint_filter({"state_dict": legacy}), strict=True)  # CT-CLIP issue #47
    fine = build({**params, "variant": "classfine", "num_classes": 18}).eval()
    sd = {f"trained_model.{k}": v for k, v in official.items()}
    sd |= {"classifier.weight": torch.zeros(18, 32), "classifier.bias": torch.zeros(18)}
    fine.load_state_dict(checkpoint_filter(sd), strict=True)
    x = fixture_input(meta["input_image"]["shape"])
    with torch.no_grad():
        assert torch.equal(fine.encode_image(x), clip.encode_image(x))
    with pytest.raises(Exception, match="CTViT expects"):
        clip.encode_image(torch.zeros(1, 1, 40, 64, 64))
