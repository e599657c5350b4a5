"""Aorta of contrast-enhanced chest CT for the builtin backend."""

from __future__ import annotations

import numpy as np


def aorta_from_contrast(m) -> np.ndarray:
    return np.zeros(m.a.shape, bool)
