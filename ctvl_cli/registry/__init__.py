"""Model registry (placeholder)."""

from __future__ import annotations


def list_models() -> list[str]:
    return []
