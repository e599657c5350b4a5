"""Model cards, names, weight resolution order, pull with sha256, tiny model."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from ctvl_cli.errors import (
    CardError,
    ModelNotFoundError,
    UsageError,
    WeightsIntegrityError,
    WeightsNotFoundError,
)
from ctvl_cli.registry import get_card, list_models, resolve_card
from ctvl_cli.registry.schema import parse_card
from ctvl_cli.registry.weights import find_weights, pull, resolve_weights

PUBLISHED = [
    "ct-clip",
    "ct-clip.vocabfine",
    "ct-clip.classfine",
    "merlin",
    "merlin-i3d.astra",
    "ct-resnet18-clip",
    "ctvl-phantom",
]


def test_all_builtin_cards_validate_and_slots_exist():
    names = list_models()
    assert "ctvl-tiny-test" in names and set(PUBLISHED) <= set(names)
    for n in names:
        c = get_card(n)
        assert c.name == n and c.embed_dim > 0 and c.weights
    assert get_card("ct-clip").license.startswith("CC-BY-NC-SA")
    assert get_card("merlin-i3d.astra").weights[0].sha256 == (
        "d793f6bb020381d998a40548425f62cf34165c88c98f3fa3c5ef20f6cf23828a"
    )


def _card_dict(**kw):
    d = json.loads(get_card("ctvl-tiny-test").raw_json)
    d.update(kw)
    return d


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"embed_dim": "32"}, "embed_dim"),
        ({"weights": []}, "weights"),
        ({"weights": [{"kind": "ftp"}]}, "kind"),
        ({"bogus": 1}, "unknown keys"),
        ({"preprocess": {"orientation": "RAS"}}, "spacing"),
        ({"weights": [{"kind": "hf", "repo": "a/b", "filename": "f", "sha256": "xyz"}]}, "sha256"),
    ],
)
def test_bad_cards_rejected(bad, match):
    with pytest.raises(CardError, match=match):
        parse_card(_card_dict(**bad), where="card.json")


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ModelNotFoundError, match="did you mean ct-clip"):
        resolve_card("ct-clpi")


def test_local_directory_card_and_weights(tmp_path):
    d = _card_dict(name="my-run", weights=[{"kind": "local", "path": "model.safetensors"}])
    (tmp_path / "ctvl_card.json").write_text(json.dumps(d))
    card = resolve_card(str(tmp_path))
    assert card.name == "my-run"
    with pytest.raises(WeightsNotFoundError, match="not found"):
        resolve_weights(card)
    from safetensors.torch import save_file

    from ctvl_cli.models.factory import create_model

    m = create_model(get_card("ctvl-tiny-test"))
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(tmp_path / "model.safetensors"))
    path, ident = resolve_weights(card)
    assert path == tmp_path / "model.safetensors" and len(ident) == 64
    m2 = create_model(card, weights_path=path)
    x = torch.randn(1, 1, 32, 32, 32)
    assert torch.equal(m.encode_image(x), m2.encode_image(x))


def _hf_card(tmp_path, sha=None):
    d = _card_dict(
        name="hubby", weights=[{"kind": "hf", "repo": "org/repo", "filename": "w.bin", "sha256": sha}]
    )
    return parse_card(d, where="t")


def test_resolution_order_explicit_then_home_then_hf_cache(tmp_path, monkeypatch):
    card = _hf_card(tmp_path)
    with pytest.raises(WeightsNotFoundError) as e:
        resolve_weights(card)
    msg = e.value.one_line()
    assert "ctvl models pull hubby" in msg and "--weights" in msg and "\n" not in msg
    # 3) the HF cache, laid out as huggingface_hub lays it out
    hub = tmp_path / "hub"
    snap = hub / "models--org--repo" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "w.bin").write_bytes(b"hf")
    (hub / "models--org--repo" / "refs").mkdir()
    (hub / "models--org--repo" / "refs" / "main").write_text("abc123")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(hub))
    assert resolve_weights(card)[0] == snap / "w.bin"
    # 2) $CTVL_HOME/weights/<model>/ wins over the HF cache
    from ctvl_cli.config import weights_dir

    home = weights_dir() / "hubby"
    home.mkdir(parents=True)
    (home / "w.bin").write_bytes(b"home")
    assert resolve_weights(card)[0] == home / "w.bin"
    # 1) --weights wins over everything
    explicit = tmp_path / "mine.bin"
    explicit.write_bytes(b"mine")
    p, ident = resolve_weights(card, weights=str(explicit))
    assert p == explicit and ident == hashlib.sha256(b"mine").hexdigest()
    with pytest.raises(WeightsNotFoundError):
        resolve_weights(card, weights=str(tmp_path / "nope.bin"))


def test_pull_from_url_verifies_sha256(tmp_path):
    src = tmp_path / "remote.bin"
    src.write_bytes(b"weights!")
    good = hashlib.sha256(b"weights!").hexdigest()
    d = _card_dict(name="urly", weights=[{"kind": "url", "url": src.as_uri(), "sha256": good}])
    card = parse_card(d, where="t")
    dest = pull(card)
    assert dest.read_bytes() == b"weights!" and find_weights(card)[0] == dest
    bad = parse_card(
        _card_dict(name="urly2", weights=[{"kind": "url", "url": src.as_uri(), "sha256": "0" * 64}]),
        where="t",
    )
    with pytest.raises(WeightsIntegrityError, match="sha256 mismatch"):
        pull(bad)
    assert find_weights(bad)[0] is None  # the bad file was deleted
    offline = parse_card(
        _card_dict(name="u3", weights=[{"kind": "url", "url": (tmp_path / "x").as_uri()}]), where="t"
    )
    with pytest.raises(WeightsNotFoundError, match="could not download"):
        pull(offline)


def test_tiny_model_deterministic_shapes_normalised():
    from ctvl_cli.models.factory import create_model_and_transforms

    m1, _, tok, card = create_model_and_transforms("ctvl-tiny-test")
    m2, *_ = create_model_and_transforms("ctvl-tiny-test")
    x = torch.randn(2, 1, *card.preprocess.shape)
    with torch.no_grad():
        a, b = m1.encode_image(x), m2.encode_image(x)
        t = m1.encode_text(**tok(["Lung nodule is present.", "Pleural effusion is not present."]))
    assert torch.equal(a, b) and a.shape == (2, 32) and t.shape == (2, 32)
    assert torch.allclose(a.norm(dim=-1), torch.ones(2)) and torch.allclose(t.norm(dim=-1), torch.ones(2))
    assert not torch.allclose(t[0], t[1])


def test_unavailable_models_say_so(tmp_path):
    import json

    from ctvl_cli.models.factory import create_model_and_transforms, resolve_device
    from ctvl_cli.registry import get_card

    card = json.loads(get_card("ctvl-tiny-test").raw_json)
    card.update(name="not-ready", available=False)
    (tmp_path / "ctvl_card.json").write_text(json.dumps(card))
    with pytest.raises(UsageError, match="not available"):
        create_model_and_transforms(str(tmp_path))
    with pytest.raises(UsageError, match="invalid --device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_torch_checkpoint_loads_weights_only_and_unwraps(tmp_path):
    from ctvl_cli.models.factory import create_model
    from ctvl_cli.registry.weights import load_state_dict

    m = create_model(get_card("ctvl-tiny-test"))
    torch.save({"state_dict": m.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    sd = load_state_dict(tmp_path / "ckpt.pt")
    assert set(sd) == set(m.state_dict())
    torch.save({"state_dict": m.state_dict(), "obj": NotATensor()}, tmp_path / "evil.pt")
    from ctvl_cli.errors import CtvlError

    with pytest.raises(CtvlError, match="cannot load weights"):  # weights_only refuses arbitrary pickles
        load_state_dict(tmp_path / "evil.pt")
    d = _card_dict(name="pt-run", weights=[{"kind": "local", "path": "ckpt.pt"}])
    (tmp_path / "ctvl_card.json").write_text(json.dumps(d))
    card = resolve_card(str(tmp_path))
    m2 = create_model(card, weights_path=resolve_weights(card)[0])
    x = torch.randn(1, 1, 32, 32, 32)
    assert torch.equal(m.encode_image(x), m2.encode_image(x))


class NotATensor:
    """An arbitrary pickled object: torch.load(weights_only=True) must refuse it."""
