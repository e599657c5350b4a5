"""Shared fixtures. Real data lives in ../shared beside the repository (CI has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CTVL_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared; skips the calling test cleanly when the file is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not present: {p}")
    return p


@pytest.fixture
def shared():
    return shared_path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own CTVL_HOME and offline hub settings."""
    home = tmp_path_factory.mktemp("ctvl_home")
    monkeypatch.setenv("CTVL_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("CTVL_DEBUG", raising=False)
    yield


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()
