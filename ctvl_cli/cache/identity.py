"""Input identities: content hashes, with a (path, size, mtime) memo as a fast path."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

from ctvl_cli.errors import InputError

_BUF = 1 << 20


def _hash_file(h, p: Path) -> None:
    with p.open("rb") as fh:
        while chunk := fh.read(_BUF):
            h.update(chunk)


def file_signature(p: Path) -> tuple:
    """Cheap change detector: (size, mtime) of a file; of a folder, every file's relative name, size, mtime."""
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        return tuple((str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    st = p.stat()
    return (st.st_size, st.st_mtime_ns)


def file_identity(path: str | os.PathLike, *, memo: dict | None = None) -> str:
    """sha256 of a file's bytes (a folder: its sorted relative file names and their bytes), as ``sha256:<hex>``.

    ``memo`` maps an absolute path to ``(signature, identity)``; when the file's size/mtime signature is unchanged
    the memoised identity is reused, otherwise the content is hashed again and the memo updated.
    """
    p = Path(path)
    try:
        key = str(p.resolve())
        sig = file_signature(p)
        if memo is not None:
            hit = memo.get(key)
            if hit is not None and tuple(hit[0]) == sig:
                return hit[1]
        h = hashlib.sha256()
        if p.is_dir():
            for f in sorted(f for f in p.rglob("*") if f.is_file()):
                h.update(str(f.relative_to(p)).encode() + b"\0")
                _hash_file(h, f)
        else:
            _hash_file(h, p)
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror or e})", path=path) from None
    ident = "sha256:" + h.hexdigest()
    if memo is not None:
        memo[key] = (sig, ident)
    return ident


def normalise_text(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def text_identity(text: str) -> str:
    """Identity of a report text: sha256 of its whitespace-normalised NFC form."""
    return "text:" + hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()
