"""The on-disk HDF5 embedding cache (crash-safe via a write-ahead journal) and input identities."""

from ctvl_cli.cache.identity import file_identity, text_identity
from ctvl_cli.cache.store import CACHE_FORMAT_VERSION, EmbeddingCache, EntryRecord, merge, model_key

__all__ = [
    "CACHE_FORMAT_VERSION",
    "EmbeddingCache",
    "EntryRecord",
    "file_identity",
    "merge",
    "model_key",
    "text_identity",
]
