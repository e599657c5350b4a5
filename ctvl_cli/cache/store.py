"""HDF5 embedding cache with a write-ahead journal.

Layout of ``emb.h5``::

    /                      attrs: ctvl_cache_format
    /models/<model_key>    attrs: name, card (JSON), weights_sha256, preprocess (JSON), dim
        embeddings (N, D) float32, ids, kinds, names, sources (N,) str, shapes (N, 3) int32,
        spacings (N, 3) float32 (NaN for texts), created (N,) float64 (unix time), run (N,) int32
    /runs                  (R,) JSON strings: per-run metadata (ctvl version, device, command, ...)
    /memo                  (M,) JSON strings: identity fast-path memo [abs path, signature, identity]

Crash safety. HDF5 itself is not safe against a process killed mid-write, so the .h5 file is never modified in
place. ``put`` writes each batch to ``emb.h5.journal/<seq>-<pid>.npz`` atomically (temp file, fsync, rename).
``commit`` copies the .h5 to a temp file, appends the journal, fsyncs and atomically replaces the .h5, then deletes
the folded journal files. A kill at any point leaves the previous .h5 intact plus complete journal files; readers
and the next writer see both, so nothing computed is lost or recomputed. Commits are amortised (the journal is
folded when it holds at least ``max(commit_every, N/10)`` entries, and at the end of a run), so a long run costs
O(N) copying, not O(N^2).

Concurrency. Writers hold an exclusive ``flock`` on ``emb.h5.lock`` (released by the kernel even after SIGKILL);
a second writer gets ``CacheLockedError``. Readers take no lock: they only ever see complete files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctvl_cli.errors import CacheError, CacheLockedError

CACHE_FORMAT_VERSION = 1
_STR = ("ids", "kinds", "names", "sources")


def model_key(*, card: dict, weights_sha256: str | None, preprocess: dict) -> str:
    """Hash of (model card, weights sha256, preprocessing spec, cache format version)."""
    blob = json.dumps(
        {"card": card, "weights": weights_sha256, "preprocess": preprocess, "format": CACHE_FORMAT_VERSION},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass
class EntryRecord:
    id: str
    kind: str  # image | text
    name: str
    source: str
    embedding: np.ndarray
    shape: tuple[int, int, int] | None = None
    spacing: tuple[float, float, float] | None = None
    created: float = 0.0
    run: int = -1


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class EmbeddingCache:
    """Open with :meth:`open`; use as a context manager."""

    def __init__(self, path: str | os.PathLike, *, writable: bool, commit_every: int = 256) -> None:
        self.path = Path(path)
        self.writable = writable
        self.commit_every = commit_every
        self.journal_dir = self.path.with_name(self.path.name + ".journal")
        self._lock_fh = None
        self._models: dict[str, dict[str, Any]] = {}  # key -> attrs
        self._ids: dict[str, set[str]] = {}  # key -> ids (committed + journal)
        self._n_committed = 0
        self._runs: list[str] = []
        self.identity_memo: dict[str, tuple] = {}
        self._new_runs: list[str] = []
        self._memo_dirty = False
        self._journal_files: list[Path] = []
        self._journal_entries = 0
        self._seq = 0
        self.run_id = -1

    # ---- life cycle ------------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | os.PathLike, *, writable: bool = False, commit_every: int = 256
    ) -> EmbeddingCache:
        c = cls(path, writable=writable, commit_every=commit_every)
        if writable:
            c._acquire_lock()
            # leftovers of a writer killed mid-commit or mid-put (we hold the lock: nobody else is writing)
            for junk in [*c.path.parent.glob(f".{c.path.name}.commit-*"), *c.journal_dir.glob(".*.tmp-*")]:
                junk.unlink(missing_ok=True)
        elif not c.path.exists() and not c.journal_dir.exists():
            raise CacheError(
                "no such cache", path=c.path, hint="create it with `ctvl embed ... --cache FILE`"
            )
        try:
            c._load()
        except BaseException:
            c.close()
            raise
        return c

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.writable and exc[0] is None:
                self.commit(force=True)
        finally:
            self.close()

    def close(self) -> None:
        if self._lock_fh is not None:
            import fcntl

            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    def _acquire_lock(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = open(lock_path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise CacheLockedError(
                f"cache is being written by another process (pid {holder})",
                path=self.path,
                hint="use one cache per process (--shard i/n) and join them with `ctvl cache merge`",
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock_fh = fh

    # ---- reading ---------------------------------------------------------------------------------------------
    def _h5(self):
        import h5py

        try:
            return h5py.File(self.path, "r")
        except OSError as e:
            raise CacheError(
                f"not a readable HDF5 cache ({' '.join(str(e).split())[:120]})",
                path=self.path,
                hint="run `ctvl cache verify`; a damaged cache can be rebuilt by re-running embed",
            ) from None

    def _load(self) -> None:
        if self.path.exists():
            with self._h5() as f:
                fmt = int(f.attrs.get("ctvl_cache_format", -1))
                if fmt != CACHE_FORMAT_VERSION:
                    raise CacheError(
                        f"unsupported cache format {fmt} (this ctvl reads {CACHE_FORMAT_VERSION})",
                        path=self.path,
                        hint="use a new cache file",
                    )
                for key, g in f.get("models", {}).items():
                    self._models[key] = {k: _attr(v) for k, v in g.attrs.items()}
                    ids = [_s(x) for x in g["ids"][:]] if "ids" in g else []
                    self._ids[key] = set(ids)
                    self._n_committed += len(ids)
                self._runs = [_s(x) for x in f["runs"][:]] if "runs" in f else []
                for line in f["memo"][:] if "memo" in f else []:
                    p, sig, ident = json.loads(_s(line))
                    self.identity_memo[p] = (tuple(sig), ident)
        for jf in self._journal():
            try:
                payload = _read_journal(jf)
            except Exception:  # a complete-named but unreadable journal file: report in verify(), skip here
                continue
            self._journal_files.append(jf)
            for key, attrs in payload["models"].items():
                self._models.setdefault(key, attrs)
            for run in payload["runs"]:
                self._runs.append(run)
            if payload["key"]:
                self._ids.setdefault(payload["key"], set()).update(payload["ids"])
                self._journal_entries += len(payload["ids"])
            for p, sig, ident in payload["memo"]:
                self.identity_memo[p] = (tuple(sig), ident)
        self._seq = len(self._journal_files)

    def _journal(self) -> list[Path]:
        if not self.journal_dir.is_dir():
            return []
        return sorted(p for p in self.journal_dir.glob("*.npz") if not p.name.startswith("."))

    def models(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self._models.items()}

    def runs(self) -> list[dict]:
        return [json.loads(r) for r in self._runs]

    def count(self, key: str) -> int:
        return len(self._ids.get(key, ()))

    def contains(self, key: str, ids: list[str]) -> set[str]:
        have = self._ids.get(key, set())
        return {i for i in ids if i in have}

    def get(
        self, key: str, *, kind: str | None = None, ids: list[str] | None = None
    ) -> tuple[list[str], np.ndarray, list[dict]]:
        """All entries of a model key (committed + journal), optionally filtered; order: committed then journal."""
        recs: list[dict] = []
        embs: list[np.ndarray] = []
        if self.path.exists():
            with self._h5() as f:
                g = f.get(f"models/{key}")
                if g is not None and "ids" in g and len(g["ids"]):
                    cols = {k: [_s(x) for x in g[k][:]] for k in _STR}
                    e = g["embeddings"][:]
                    sh, sp, cr, rn = g["shapes"][:], g["spacings"][:], g["created"][:], g["run"][:]
                    for i in range(len(cols["ids"])):
                        recs.append(
                            {
                                "id": cols["ids"][i],
                                "kind": cols["kinds"][i],
                                "name": cols["names"][i],
                                "source": cols["sources"][i],
                                "shape": sh[i].tolist(),
                                "spacing": sp[i].tolist(),
                                "created": float(cr[i]),
                                "run": int(rn[i]),
                            }
                        )
                    embs.append(e)
        seen = {r["id"] for r in recs}
        for jf in self._journal_files:
            payload = _read_journal(jf)
            if payload["key"] != key:
                continue
            for i, rid in enumerate(payload["ids"]):
                if rid in seen:
                    continue
                seen.add(rid)
                recs.append(
                    {
                        "id": rid,
                        "kind": payload["kinds"][i],
                        "name": payload["names"][i],
                        "source": payload["sources"][i],
                        "shape": payload["shapes"][i].tolist(),
                        "spacing": payload["spacings"][i].tolist(),
                        "created": float(payload["created"][i]),
                        "run": int(payload["run"][i]),
                    }
                )
                embs.append(payload["embeddings"][i : i + 1])
        emb = np.concatenate(embs, axis=0).astype(np.float32) if embs else np.zeros((0, 0), np.float32)
        keep = [
            i
            for i, r in enumerate(recs)
            if (kind is None or r["kind"] == kind) and (ids is None or r["id"] in ids)
        ]
        if ids is not None:
            order = {v: n for n, v in enumerate(ids)}
            keep.sort(key=lambda i: order[recs[i]["id"]])
        return [recs[i]["id"] for i in keep], emb[keep] if len(emb) else emb, [recs[i] for i in keep]

    # ---- writing ---------------------------------------------------------------------------------------------
    def _need_writable(self) -> None:
        if not self.writable:
            raise CacheError("cache opened read-only", path=self.path)

    def register_model(
        self, key: str, *, name: str, card: dict, weights_sha256: str | None, preprocess: dict
    ) -> None:
        self._need_writable()
        if key not in self._models:
            self._models[key] = {
                "name": name,
                "card": json.dumps(card, sort_keys=True),
                "preprocess": json.dumps(preprocess, sort_keys=True),
                "weights_sha256": weights_sha256 or "",
            }
            self._pending_models = {**getattr(self, "_pending_models", {}), key: self._models[key]}

    def start_run(self, meta: dict) -> int:
        self._need_writable()
        self.run_id = len(self._runs)
        run = json.dumps({"run": self.run_id, "started": time.time(), **meta}, sort_keys=True, default=str)
        self._runs.append(run)
        self._new_runs.append(run)
        return self.run_id

    def put(self, key: str, *, records: list[EntryRecord]) -> None:
        """Append a batch durably (journal file, atomic). Entries already present are ignored."""
        self._need_writable()
        if key and key not in self._models:
            raise CacheError(f"model key {key} not registered", path=self.path)
        have = self._ids.setdefault(key, set()) if key else set()
        recs = [r for r in records if r.id not in have]
        if not recs and not self._new_runs and not getattr(self, "_pending_models", {}):
            return
        dims = {int(np.asarray(r.embedding).size) for r in recs}
        known = self._models.get(key, {}).get("dim")
        if len(dims) > 1 or (known and recs and int(known) not in dims):
            raise CacheError(f"embedding dimension mismatch {sorted(dims)} vs {known}", path=self.path)
        if recs:
            self._models[key]["dim"] = dims.pop()
        now = time.time()
        nan3 = (float("nan"),) * 3
        payload = {
            "key": key,
            "ids": [r.id for r in recs],
            "kinds": [r.kind for r in recs],
            "names": [r.name for r in recs],
            "sources": [r.source for r in recs],
            "embeddings": np.stack([np.asarray(r.embedding, np.float32).ravel() for r in recs])
            if recs
            else np.zeros((0, 0), np.float32),
            "shapes": np.array([r.shape or (0, 0, 0) for r in recs], np.int32).reshape(-1, 3),
            "spacings": np.array([r.spacing or nan3 for r in recs], np.float32).reshape(-1, 3),
            "created": np.array([r.created or now for r in recs], np.float64),
            "run": np.array([self.run_id if r.run < 0 else r.run for r in recs], np.int32),
            "models": getattr(self, "_pending_models", {}),
            "runs": self._new_runs,
            "memo": [[p, list(sig), ident] for p, (sig, ident) in self.identity_memo.items()],
        }
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        jf = self.journal_dir / f"{int(time.time() * 1e6):017d}-{os.getpid()}-{self._seq:06d}.npz"
        self._seq += 1
        _atomic_write(jf, _encode_journal(payload))
        self._journal_files.append(jf)
        self._pending_models, self._new_runs = {}, []
        have.update(payload["ids"])
        self._journal_entries += len(recs)
        if self._journal_entries >= max(self.commit_every, self._n_committed // 10):
            self.commit()

    def commit(self, *, force: bool = False) -> None:
        """Fold the journal into the .h5 file (atomic replace). No-op when there is nothing to fold."""
        self._need_writable()
        if self._new_runs or getattr(self, "_pending_models", {}):
            self.put("", records=[])  # metadata-only journal entry
        # fold every complete journal file on disk (we hold the lock), not only those this process knows of:
        # a put interrupted between its atomic rename and its bookkeeping still left a valid file
        self._journal_files = self._journal()
        if not self._journal_files:
            return
        import h5py

        tmp = self.path.with_name(f".{self.path.name}.commit-{os.getpid()}")
        if self.path.exists():
            shutil.copyfile(self.path, tmp)
        with h5py.File(tmp, "a") as f:
            f.attrs["ctvl_cache_format"] = CACHE_FORMAT_VERSION
            models = f.require_group("models")
            all_runs = [_s(x) for x in f["runs"][:]] if "runs" in f else []
            memo = {}
            folded = []
            for jf in self._journal_files:
                try:
                    p = _read_journal(jf)
                except Exception:  # unreadable: left in place, reported by verify()
                    continue
                folded.append(jf)
                for key, attrs in p["models"].items():
                    if key not in models:
                        g = models.create_group(key)
                        for k, v in attrs.items():
                            g.attrs[k] = v
                for r in p["runs"]:
                    if r not in all_runs:
                        all_runs.append(r)
                for path, sig, ident in p["memo"]:
                    memo[path] = (sig, ident)
                if p["key"] and len(p["ids"]):
                    _append(models[p["key"]], p)
            _replace(f, "runs", all_runs)
            _replace(
                f,
                "memo",
                [
                    json.dumps([k, list(s), i])
                    for k, (s, i) in {**{k: v for k, v in self.identity_memo.items()}, **memo}.items()
                ],
            )
            f.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        for jf in folded:
            jf.unlink(missing_ok=True)
        self._journal_files = [jf for jf in self._journal_files if jf not in folded]
        self._n_committed += self._journal_entries
        self._journal_entries = 0

    # ---- housekeeping ----------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        models = []
        for key, attrs in self._models.items():
            _, _, recs = self.get(key)
            kinds = [r["kind"] for r in recs]
            models.append(
                {
                    "model_key": key,
                    "model": attrs.get("name"),
                    "dim": int(attrs.get("dim", 0) or 0),
                    "images": kinds.count("image"),
                    "texts": kinds.count("text"),
                    "regions": sum(1 for k in kinds if k.startswith("region:")),
                }
            )
        return {
            "path": str(self.path),
            "format": CACHE_FORMAT_VERSION,
            "size_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "journal_files": len(self._journal_files),
            "runs": len(self._runs),
            "models": models,
        }

    def verify(self, *, sources: bool = False) -> list[str]:
        """Problems found (empty list: the cache is sound)."""
        from ctvl_cli.cache.identity import file_identity

        problems: list[str] = []
        if self.path.exists():
            try:
                with self._h5() as f:
                    for key, g in f.get("models", {}).items():
                        if "ids" not in g:  # a registered model without entries
                            continue
                        n = len(g["ids"])
                        for k in (*_STR, "embeddings", "shapes", "spacings", "created", "run"):
                            if k not in g or len(g[k]) != n:
                                problems.append(f"model {key}: dataset {k} missing or length != {n}")
                        if "embeddings" in g and n:
                            e = g["embeddings"][:]
                            if not np.isfinite(e).all():
                                problems.append(f"model {key}: non-finite embeddings")
                            if int(g.attrs.get("dim", e.shape[1])) != e.shape[1]:
                                problems.append(f"model {key}: dim attribute != embeddings width")
                        ids = [_s(x) for x in g["ids"][:]]
                        if len(set(ids)) != len(ids):
                            problems.append(f"model {key}: duplicate ids")
            except CacheError as e:
                problems.append(e.one_line())
        for jf in self._journal():
            try:
                _read_journal(jf)
            except Exception as e:
                problems.append(f"{jf}: unreadable journal file ({type(e).__name__})")
        if sources:
            for key in self._models:
                _, _, recs = self.get(key, kind="image")
                for r in recs:
                    src = r["source"]
                    if not Path(src).exists():
                        problems.append(f"{src}: source missing (entry {r['id'][:19]})")
                    elif file_identity(src) != r["id"]:
                        problems.append(f"{src}: source changed since it was embedded")
        return problems


def merge(dest: str | os.PathLike, sources: list[str | os.PathLike]) -> dict[str, int]:
    """Join shard caches into ``dest``. Returns counts: added, duplicates (same id already present)."""
    added = dup = 0
    with EmbeddingCache.open(dest, writable=True) as out:
        for src in sources:
            if Path(src).resolve() == Path(dest).resolve():
                continue
            with EmbeddingCache.open(src) as c:
                for key, attrs in c.models().items():
                    if key not in out._models:
                        out._models[key] = dict(attrs)
                        out._pending_models = {**getattr(out, "_pending_models", {}), key: dict(attrs)}
                    elif (
                        attrs.get("dim")
                        and out._models[key].get("dim")
                        and attrs["dim"] != out._models[key]["dim"]
                    ):
                        raise CacheError(
                            f"model {key}: dimension {attrs['dim']} != {out._models[key]['dim']}", path=src
                        )
                    ids, emb, recs = c.get(key)
                    new = [(r, e) for r, e in zip(recs, emb) if r["id"] not in out._ids.get(key, set())]
                    dup += len(recs) - len(new)
                    if new:
                        out.put(
                            key,
                            records=[
                                EntryRecord(
                                    id=r["id"],
                                    kind=r["kind"],
                                    name=r["name"],
                                    source=r["source"],
                                    embedding=e,
                                    shape=tuple(r["shape"]),
                                    spacing=tuple(r["spacing"]),
                                    created=r["created"],
                                    run=-1,
                                )
                                for r, e in new
                            ],
                        )
                        added += len(new)
                for r in c.runs():
                    out.start_run({**r, "merged_from": str(src)})
    return {"added": added, "duplicates": dup}


# ---- helpers -----------------------------------------------------------------------------------------------------
def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def _attr(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)


def _encode_journal(p: dict) -> bytes:
    buf = io.BytesIO()
    meta = {k: p[k] for k in ("key", "ids", "kinds", "names", "sources", "models", "runs", "memo")}
    np.savez(
        buf,
        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        **{k: p[k] for k in ("embeddings", "shapes", "spacings", "created", "run")},
    )
    return buf.getvalue()


def _read_journal(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        p = json.loads(z["meta"].tobytes().decode())
        for k in ("embeddings", "shapes", "spacings", "created", "run"):
            p[k] = z[k]
    return p


def _append(g, p: dict) -> None:
    import h5py

    have = set(_s(x) for x in g["ids"][:]) if "ids" in g else set()
    keep = [i for i, r in enumerate(p["ids"]) if r not in have]
    if not keep:
        return
    e = p["embeddings"][keep]
    n, d = e.shape
    str_dt = h5py.string_dtype()
    if "embeddings" not in g:
        g.attrs["dim"] = d
        g.create_dataset(
            "embeddings",
            shape=(0, d),
            maxshape=(None, d),
            dtype="f4",
            chunks=(max(1, min(1024, 2**20 // (4 * d))), d),
        )
        for k in _STR:
            g.create_dataset(k, shape=(0,), maxshape=(None,), dtype=str_dt, chunks=(1024,))
        g.create_dataset("shapes", shape=(0, 3), maxshape=(None, 3), dtype="i4", chunks=(1024, 3))
        g.create_dataset("spacings", shape=(0, 3), maxshape=(None, 3), dtype="f4", chunks=(1024, 3))
        g.create_dataset("created", shape=(0,), maxshape=(None,), dtype="f8", chunks=(1024,))
        g.create_dataset("run", shape=(0,), maxshape=(None,), dtype="i4", chunks=(1024,))
    m = g["embeddings"].shape[0]
    cols = {
        "embeddings": e,
        "shapes": p["shapes"][keep],
        "spacings": p["spacings"][keep],
        "created": p["created"][keep],
        "run": p["run"][keep],
        **{k: np.array([p[k][i] for i in keep], dtype=object) for k in _STR},
    }
    for k, v in cols.items():
        ds = g[k]
        ds.resize(m + n, axis=0)
        ds[m:] = v


def _replace(f, name: str, lines: list[str]) -> None:
    import h5py

    if name in f:
        del f[name]
    f.create_dataset(name, data=np.array(lines, dtype=object), dtype=h5py.string_dtype())
