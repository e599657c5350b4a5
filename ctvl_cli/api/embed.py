"""`ctvl embed`: volumes and report texts to embeddings, stored in the HDF5 cache.

Pipeline: discover inputs -> shard -> identity (content hash, memoised) -> skip cached -> parallel
decode + preprocess (DataLoader workers on CPU; on a GPU the volume is preprocessed on the device)
-> batched encoder forward -> journaled cache writes (crash-safe) -> commit.
A bad input is recorded and skipped; the batch continues. Ctrl-C commits what was computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ctvl_cli.errors import CtvlError, UsageError

DEFAULT_MODEL = "ctvl-phantom"


@dataclass
class ItemResult:
    name: str
    source: str
    kind: str  # image | text
    id: str | None
    status: str  # embedded | cached | failed
    error: str | None = None


@dataclass
class EmbedResult:
    model: str
    model_key: str
    cache: str
    items: list[ItemResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for it in self.items if it.status == status)

    @property
    def failures(self) -> list[ItemResult]:
        return [it for it in self.items if it.status == "failed"]


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """Parse ``i/n`` (0 <= i < n). Shards are disjoint and deterministic: item k of the sorted input list
    belongs to shard ``k % n``."""
    if spec is None:
        return None
    try:
        i_s, n_s = spec.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise UsageError(f"invalid --shard {spec!r}", hint="use i/n with 0 <= i < n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"invalid --shard {spec!r}", hint="use i/n with 0 <= i < n, e.g. 0/4")
    return i, n


def _one_line(e: BaseException) -> str:
    if isinstance(e, CtvlError):
        return e.one_line()
    return " ".join(f"{type(e).__name__}: {e}".split())
