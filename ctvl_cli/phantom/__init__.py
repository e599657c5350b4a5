"""Procedural chest-CT phantoms with known CT-RATE findings (volumes, masks, reports, labels).

Importing this package loads numpy and PyYAML only; nibabel is imported when files are written.
"""

from __future__ import annotations

from ctvl_cli.phantom.findings import finding_names
from ctvl_cli.phantom.generate import PhantomCase, case_name, generate_phantom, save_nifti, write_phantoms

__all__ = ["PhantomCase", "case_name", "finding_names", "generate_phantom", "save_nifti", "write_phantoms"]
