"""Model registry: one JSON card per model in ``ctvl_cli/registry/cards``. Importing this imports no torch.

Names: ``arch[.tag]`` (a card's ``name``), ``hf-hub:ORG/REPO`` (a hub repo holding ``ctvl_card.json`` and the
weights), or a local path (a directory with ``ctvl_card.json`` — e.g. a fine-tuning run — or a card ``.json``).
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources
from pathlib import Path

from ctvl_cli.errors import ModelNotFoundError
from ctvl_cli.registry.schema import ModelCard, load_card_file

CARD_FILE = "ctvl_card.json"


@cache
def _builtin() -> dict[str, ModelCard]:
    out: dict[str, ModelCard] = {}
    for f in sorted(resources.files("ctvl_cli.registry").joinpath("cards").iterdir(), key=lambda x: x.name):
        if f.name.endswith(".json"):
            c = load_card_file(Path(str(f)))
            c = ModelCard(**{**c.__dict__, "base_dir": None})
            out[c.name] = c
    return out


def list_models() -> list[str]:
    return sorted(_builtin())


def get_card(name: str) -> ModelCard:
    cards = _builtin()
    if name in cards:
        return cards[name]
    close = difflib.get_close_matches(name, list(cards), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ModelNotFoundError(f"unknown model {name!r}", hint=f"{hint}see `ctvl models list`")


def resolve_card(name_or_path: str) -> ModelCard:
    """Registry name, ``hf-hub:ORG/REPO``, a directory holding ``ctvl_card.json``, or a card file."""
    if name_or_path.startswith("hf-hub:"):
        from ctvl_cli.registry.weights import hf_card

        return hf_card(name_or_path[len("hf-hub:") :])
    p = Path(name_or_path).expanduser()
    if p.is_dir() and (p / CARD_FILE).is_file():
        return load_card_file(p / CARD_FILE)
    if p.is_file() and p.suffix == ".json":
        return load_card_file(p)
    if ("/" in name_or_path or name_or_path.endswith(".json")) and not p.exists():
        raise ModelNotFoundError(
            "no such model directory or card",
            path=name_or_path,
            hint=f"a local model is a directory holding {CARD_FILE}",
        )
    return get_card(name_or_path)
