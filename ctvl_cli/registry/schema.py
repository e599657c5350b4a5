"""Model cards: JSON files validated into frozen dataclasses. Pure Python (no torch/numpy)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctvl_cli.errors import CardError
from ctvl_cli.preprocess.spec import PreprocessSpec

WEIGHT_KINDS = ("init", "local", "hf", "url", "package")
CARD_KEYS = {
    "name",
    "description",
    "architecture",
    "embed_dim",
    "preprocess",
    "text",
    "prompt_templates",
    "weights",
    "license",
    "homepage",
    "citation",
    "capabilities",
    "normalize_embeddings",
    "available",
    "notes",
}


@dataclass(frozen=True)
class WeightSource:
    kind: str
    repo: str | None = None
    repo_type: str = "model"
    filename: str | None = None
    url: str | None = None
    path: str | None = None
    package: str | None = None
    seed: int | None = None
    sha256: str | None = None
    size: int | None = None
    revision: str | None = None

    @property
    def file_name(self) -> str | None:
        if self.filename:
            return Path(self.filename).name
        if self.url:
            return self.url.rstrip("/").rsplit("/", 1)[-1]
        if self.path:
            return Path(self.path).name
        return None


@dataclass(frozen=True)
class TokenizerSpec:
    kind: str  # "hf" (hub name or directory) | "packaged" (a directory shipped inside ctvl_cli/tokenizers)
    name_or_path: str
    max_length: int
    lower_case: bool = True
    clean: str = "none"  # text cleaning before tokenizing: "none" | "wordpunct" (Merlin's sanitize_report)


@dataclass(frozen=True)
class ModelCard:
    name: str
    description: str
    arch: str
    params_json: str  # architecture params as canonical JSON (frozen)
    embed_dim: int
    preprocess: PreprocessSpec
    tokenizer: TokenizerSpec | None
    prompt_templates: str
    weights: tuple[WeightSource, ...]
    license: str
    homepage: str
    citation: str
    capabilities: tuple[str, ...]
    normalize_embeddings: bool
    available: bool
    notes: str
    raw_json: str
    base_dir: str | None = None  # directory holding the card (local cards: weights paths are relative to it)

    @property
    def params(self) -> dict[str, Any]:
        return json.loads(self.params_json)

    @property
    def has_text(self) -> bool:
        return self.tokenizer is not None

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.raw_json)


def _req(d: Mapping, key: str, typ, where: str):
    if key not in d:
        raise CardError(f"{where}: missing required key {key!r}")
    v = d[key]
    if not isinstance(v, typ):
        raise CardError(f"{where}: {key!r} must be {getattr(typ, '__name__', typ)}")
    return v


def parse_card(d: Mapping[str, Any], *, where: str, base_dir: str | None = None) -> ModelCard:
    if not isinstance(d, Mapping):
        raise CardError(f"{where}: a model card must be a JSON object")
    unknown = sorted(set(d) - CARD_KEYS)
    if unknown:
        raise CardError(f"{where}: unknown keys {unknown}", hint=f"allowed: {', '.join(sorted(CARD_KEYS))}")
    name = _req(d, "name", str, where)
    arch = _req(d, "architecture", Mapping, where)
    arch_name = _req(arch, "arch", str, f"{where}: architecture")
    params = arch.get("params", {})
    if not isinstance(params, Mapping):
        raise CardError(f"{where}: architecture.params must be an object")
    embed_dim = _req(d, "embed_dim", int, where)
    pre = PreprocessSpec.from_dict(_req(d, "preprocess", Mapping, where), where=f"{where}: preprocess")
    tok = None
    text = d.get("text")
    if text is not None:
        t = _req(text, "tokenizer", Mapping, f"{where}: text")
        try:
            tok = TokenizerSpec(
                kind=str(t["kind"]),
                name_or_path=str(t["name_or_path"]),
                max_length=int(t["max_length"]),
                lower_case=bool(t.get("lower_case", True)),
                clean=str(t.get("clean", "none")),
            )
        except (KeyError, TypeError, ValueError):
            raise CardError(f"{where}: text.tokenizer needs kind, name_or_path, max_length") from None
        if tok.kind not in ("hf", "packaged"):
            raise CardError(f"{where}: text.tokenizer.kind must be hf or packaged")
        from ctvl_cli.tokenizers.clean import CLEANERS

        if tok.clean not in CLEANERS:
            raise CardError(f"{where}: text.tokenizer.clean must be one of {sorted(CLEANERS)}")
    ws = []
    for i, w in enumerate(d.get("weights", [])):
        if not isinstance(w, Mapping) or w.get("kind") not in WEIGHT_KINDS:
            raise CardError(f"{where}: weights[{i}].kind must be one of {WEIGHT_KINDS}")
        extra = set(w) - set(WeightSource.__dataclass_fields__)
        if extra:
            raise CardError(f"{where}: weights[{i}] has unknown keys {sorted(extra)}")
        sha = w.get("sha256")
        if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise CardError(f"{where}: weights[{i}].sha256 must be 64 lowercase hex digits or null")
        ws.append(WeightSource(**w))
    if not ws:
        raise CardError(f"{where}: at least one weights source is required (kind 'init' for random init)")
    return ModelCard(
        name=name,
        description=str(d.get("description", "")),
        arch=arch_name,
        params_json=json.dumps(params, sort_keys=True),
        embed_dim=embed_dim,
        preprocess=pre,
        tokenizer=tok,
        prompt_templates=str(d.get("prompt_templates", "ctclip")),
        weights=tuple(ws),
        license=str(d.get("license", "unknown")),
        homepage=str(d.get("homepage", "")),
        citation=str(d.get("citation", "")),
        capabilities=tuple(d.get("capabilities", [])),
        normalize_embeddings=bool(d.get("normalize_embeddings", True)),
        available=bool(d.get("available", True)),
        notes=str(d.get("notes", "")),
        raw_json=json.dumps(copy.deepcopy(dict(d)), sort_keys=True),
        base_dir=base_dir,
    )


def load_card_file(path: str | Path) -> ModelCard:
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CardError(f"cannot read model card ({' '.join(str(e).split())[:120]})", path=p) from None
    return parse_card(d, where=str(p), base_dir=str(p.parent))
