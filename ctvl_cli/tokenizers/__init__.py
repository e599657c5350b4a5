"""Tokenizers: HF tokenizers by hub name or directory; small vocabularies shipped in this package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ctvl_cli.errors import WeightsNotFoundError


def packaged_dir(name: str) -> Path:
    """Directory of a tokenizer shipped inside ctvl (e.g. ``tiny``)."""
    return Path(str(resources.files("ctvl_cli.tokenizers").joinpath(name)))


def tokenizer_source(card) -> str:
    """Where a card's tokenizer loads from: a packaged directory, a directory beside a local card (e.g. a run's
    ``tokenizer/``), or a hub name / path as written."""
    spec = card.tokenizer
    if spec.kind == "packaged":
        return str(packaged_dir(spec.name_or_path))
    if card.base_dir and (Path(card.base_dir) / spec.name_or_path).is_dir():
        return str(Path(card.base_dir) / spec.name_or_path)
    return spec.name_or_path


def load_hf_tokenizer(name_or_path: str, *, lower_case: bool | None = None):
    """``AutoTokenizer.from_pretrained`` (never ``BertTokenizer(vocab_file=...)``, which ignores the file)."""
    from transformers import AutoTokenizer

    kw = {} if lower_case is None else {"do_lower_case": lower_case}
    try:
        return AutoTokenizer.from_pretrained(name_or_path, **kw)
    except OSError:
        raise WeightsNotFoundError(
            f"tokenizer {name_or_path!r} is not available offline",
            hint=f"download it once online (huggingface_hub: `hf download {name_or_path}`) "
            "or point the card's tokenizer at a local directory",
        ) from None
