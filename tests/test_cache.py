"""HDF5 cache: journal, atomic commits, SIGKILL safety, locking, merge, identities."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ctvl_cli.cache import EmbeddingCache, EntryRecord, file_identity, merge, model_key, text_identity
from ctvl_cli.errors import CacheError, CacheLockedError

KEY = model_key(card={"name": "m"}, weights_sha256="w", preprocess={"p": 1})


def _rec(i: int, d: int = 8) -> EntryRecord:
    return EntryRecord(
        id=f"sha256:{i:064d}",
        kind="image",
        name=f"scan{i}",
        source=f"/data/scan{i}.nii.gz",
        embedding=np.full(d, float(i), np.float32),
        shape=(10, 11, 12),
        spacing=(0.7, 0.7, 2.5),
    )


def _open_w(path, **kw):
    c = EmbeddingCache.open(path, writable=True, **kw)
    c.register_model(KEY, name="m", card={"name": "m"}, weights_sha256="w", preprocess={"p": 1})
    c.start_run({"test": True})
    return c


def test_put_commit_reopen_get(tmp_path):
    p = tmp_path / "c.h5"
    with _open_w(p, commit_every=3) as c:
        for i in range(7):
            c.put(KEY, records=[_rec(i)])
        c.put(KEY, records=[_rec(3)])  # duplicates are ignored
    with EmbeddingCache.open(p) as c:
        ids, emb, recs = c.get(KEY)
        assert ids == [f"sha256:{i:064d}" for i in range(7)]
        assert np.array_equal(emb[:, 0], np.arange(7)) and emb.dtype == np.float32
        assert recs[2]["shape"] == [10, 11, 12] and recs[2]["spacing"] == pytest.approx([0.7, 0.7, 2.5])
        assert c.verify() == [] and c.info()["journal_files"] == 0 and len(c.runs()) == 1
        assert c.contains(KEY, [ids[0], "sha256:x"]) == {ids[0]}


def test_uncommitted_journal_is_visible_and_folded_later(tmp_path):
    p = tmp_path / "c.h5"
    c = _open_w(p, commit_every=10**6)
    for i in range(4):
        c.put(KEY, records=[_rec(i)])
    c.close()  # "crash": no commit
    (p.parent / "c.h5.journal" / ".half-written.npz.tmp-1").write_bytes(b"garbage")
    with EmbeddingCache.open(p) as r:
        assert r.get(KEY)[0] == [f"sha256:{i:064d}" for i in range(4)]
        assert r.info()["journal_files"] == 4
    with _open_w(p) as c:
        c.put(KEY, records=[_rec(9)])
    with EmbeddingCache.open(p) as r:
        assert len(r.get(KEY)[0]) == 5 and r.info()["journal_files"] == 0 and r.verify() == []


def test_model_key_changes_with_card_weights_or_preprocess():
    base = dict(card={"a": 1}, weights_sha256="x", preprocess={"s": [1, 1, 1]})
    k = model_key(**base)
    assert k == model_key(**base)
    assert k != model_key(**{**base, "card": {"a": 2}})
    assert k != model_key(**{**base, "weights_sha256": "y"})
    assert k != model_key(**{**base, "preprocess": {"s": [1, 1, 2]}})


def test_dimension_mismatch_rejected(tmp_path):
    with _open_w(tmp_path / "c.h5") as c:
        c.put(KEY, records=[_rec(0, d=8)])
        with pytest.raises(CacheError, match="dimension"):
            c.put(KEY, records=[_rec(1, d=9)])


def test_second_writer_refused_and_lock_released(tmp_path):
    p = tmp_path / "c.h5"
    code = f"from ctvl_cli.cache import EmbeddingCache\nEmbeddingCache.open({str(p)!r}, writable=True)\n"
    with _open_w(p):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode != 0 and "CacheLockedError" in r.stderr and f"pid {os.getpid()}" in r.stderr
        with pytest.raises(CacheLockedError, match="ctvl cache merge"):
            EmbeddingCache.open(p, writable=True)
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from ctvl_cli.cache import EmbeddingCache, EntryRecord
    path, key = sys.argv[1], sys.argv[2]
    c = EmbeddingCache.open(path, writable=True, commit_every=5)
    c.register_model(key, name="m", card={"name": "m"}, weights_sha256="w", preprocess={"p": 1})
    c.start_run({})
    for i in range(100000):
        e = np.full(64, float(i), np.float32)
        c.put(key, records=[EntryRecord(id=f"id{i:08d}", kind="image", name=str(i), source="s", embedding=e)])
        print(i, flush=True)
""")


def test_sigkill_during_writes_never_corrupts_committed_entries(tmp_path):
    p = tmp_path / "c.h5"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(p), KEY], stdout=subprocess.PIPE, text=True)
    seen = -1
    t0 = time.time()
    while seen < 60 and time.time() - t0 < 60:
        seen = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)  # mid-write: commits happen every few entries
    proc.wait()
    assert seen >= 60
    with EmbeddingCache.open(p) as c:
        assert c.verify() == []
        ids, emb, _ = c.get(KEY)
    # every entry the writer reported as written (put returned) is there, intact
    assert len(ids) >= seen + 1
    assert ids[: seen + 1] == [f"id{i:08d}" for i in range(seen + 1)]
    assert np.array_equal(emb[: seen + 1, 0], np.arange(seen + 1, dtype=np.float32))
    # the lock died with the process; a new writer continues where it stopped
    with _open_w(p) as c:
        assert not list(tmp_path.glob(".c.h5.commit-*"))  # a killed commit's temp file is cleaned up
        c.put(KEY, records=[_rec(10**6, d=64)])


def test_merge_shards(tmp_path):
    a, b, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "all.h5"
    with _open_w(a) as c:
        c.put(KEY, records=[_rec(i) for i in range(0, 6, 2)])
    with _open_w(b) as c:
        c.put(KEY, records=[_rec(i) for i in (1, 3, 5, 4)])
    res = merge(out, [a, b])
    assert res == {"added": 6, "duplicates": 1}
    with EmbeddingCache.open(out) as c:
        ids, emb, _ = c.get(KEY)
        assert sorted(ids) == [f"sha256:{i:064d}" for i in range(6)] and c.verify() == []
        assert len(c.runs()) >= 2


def test_unreadable_cache_is_a_clear_error(tmp_path):
    p = tmp_path / "c.h5"
    p.write_bytes(b"not hdf5")
    with pytest.raises(CacheError, match="not a readable HDF5 cache"):
        EmbeddingCache.open(p)
    with pytest.raises(CacheError, match="no such cache"):
        EmbeddingCache.open(tmp_path / "missing.h5")


def test_file_identity_memo_fast_path_and_fallback(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"a" * 1000)
    memo: dict = {}
    i1 = file_identity(f, memo=memo)
    assert i1 == file_identity(f) and str(f.resolve()) in memo
    st = f.stat()
    f.write_bytes(b"b" * 1000)  # same size, new content
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert file_identity(f, memo=memo) != i1
    d = tmp_path / "series"
    d.mkdir()
    (d / "1.dcm").write_bytes(b"one")
    (d / "2.dcm").write_bytes(b"two")
    j = file_identity(d)
    (d / "2.dcm").write_bytes(b"TWO")
    assert file_identity(d) != j
    assert text_identity("Lung  nodule.\n") == text_identity("Lung nodule.") != text_identity("lung nodule.")
