"""Preprocessed-input store for training (``finetune clip --input-cache DIR``).

Decoding and resampling a full-resolution scan costs far more than a small model's training step on a CPU, and
every epoch repeats it. The store preprocesses each volume once — same engine, same card preprocessing as
``embed``, in parallel DataLoader workers — into one float16 ``.npy`` memory map, and later epochs (and resumed or
repeated runs) read from it. Its name hashes the preprocessing spec and every input file's identity (path, size,
mtime), so a changed scan or a changed card makes a new store instead of reusing stale tensors. A ``.done``
bitmap written as it fills makes an interrupted fill resume where it stopped.

float16 keeps values in [-1, 1] to about 5e-4: fine for training, not for parity checks (embed never uses it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ctvl_cli.errors import InputError


def store_key(images: Sequence[str], spec) -> str:
    """Preprocessing fingerprint + each input's absolute path and change signature (a DICOM folder: its files)."""
    from ctvl_cli.cache.identity import file_signature

    h = hashlib.sha256(spec.fingerprint().encode())
    for p in images:
        h.update(f"{os.path.abspath(p)}\0{file_signature(Path(p))}\n".encode())
    return h.hexdigest()[:16]


class InputStore:
    """Float16 memory map of preprocessed volumes, index-aligned with ``images``."""

    def __init__(self, root: str | Path, images: Sequence[str], spec) -> None:
        self.root, self.images, self.spec = Path(root), list(images), spec
        self.shape = (len(self.images), 1, *spec.shape)
        key = store_key(self.images, spec)
        self.data_path = self.root / f"inputs-{key}.npy"
        self.done_path = self.root / f"inputs-{key}.done.npy"
        self._data = None

    def missing(self) -> list[int]:
        import numpy as np

        if not self.done_path.exists() or not self.data_path.exists():
            return list(range(len(self.images)))
        done = np.load(self.done_path)
        return [int(i) for i in np.flatnonzero(~done)]

    def fill(self, *, workers: int = 0, on_progress: Callable[[int, int], None] | None = None) -> int:
        """Preprocess every volume not yet stored. Returns how many were processed now."""
        import numpy as np
        import torch

        todo = self.missing()
        if not todo:
            return 0
        self.root.mkdir(parents=True, exist_ok=True)
        if self.data_path.exists():
            data = np.load(self.data_path, mmap_mode="r+")
            done = np.load(self.done_path) if self.done_path.exists() else np.zeros(len(self.images), bool)
        else:
            data = np.lib.format.open_memmap(self.data_path, mode="w+", dtype=np.float16, shape=self.shape)
            done = np.zeros(len(self.images), bool)
        loader = torch.utils.data.DataLoader(
            _Decode(self.images, self.spec, todo), batch_size=None, num_workers=workers
        )
        n = 0
        for j, x in loader:
            data[j] = x.numpy().astype(np.float16)
            done[j] = True
            n += 1
            if n % 64 == 0:
                data.flush()
                _save_atomic(self.done_path, done)
            if on_progress:
                on_progress(n, len(todo))
        data.flush()
        _save_atomic(self.done_path, done)
        del data
        return n

    def __getitem__(self, i: int):
        import numpy as np
        import torch

        if self._data is None:  # opened lazily so each DataLoader worker maps the file itself
            self._data = np.load(self.data_path, mmap_mode="r")
        return torch.from_numpy(np.asarray(self._data[i], dtype=np.float32))

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_data"] = None
        return d


class _Decode:
    def __init__(self, images, spec, todo) -> None:
        self.images, self.spec, self.todo = images, spec, todo

    def __len__(self) -> int:
        return len(self.todo)

    def __getitem__(self, k: int):
        from ctvl_cli.train.data import load_input

        j = self.todo[k]
        try:
            return j, load_input(self.images[j], self.spec)
        except InputError:
            raise
        except Exception as e:
            raise InputError(f"cannot preprocess ({e})", path=self.images[j]) from e


def _save_atomic(path: Path, arr) -> None:
    import numpy as np

    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)
