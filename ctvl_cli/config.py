"""Paths and settings. Environment variables override defaults; nothing here imports heavy libraries."""

from __future__ import annotations

import os
from pathlib import Path


def ctvl_home() -> Path:
    """Root for ctvl's weights and state: ``$CTVL_HOME`` or ``~/.cache/ctvl``."""
    env = os.environ.get("CTVL_HOME")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if str(home) in ("/", ""):  # containers without a home directory
        return Path("/tmp/ctvl")
    return home / ".cache" / "ctvl"


def weights_dir() -> Path:
    """Where downloaded/placed weights live: ``$CTVL_HOME/weights``."""
    return ctvl_home() / "weights"


def debug_enabled() -> bool:
    return os.environ.get("CTVL_DEBUG", "") not in ("", "0", "false", "False")


def offline() -> bool:
    """True when hub access is disabled (``HF_HUB_OFFLINE=1`` or ``CTVL_OFFLINE=1``)."""
    return any(os.environ.get(k, "") not in ("", "0") for k in ("HF_HUB_OFFLINE", "CTVL_OFFLINE"))
