"""CT volume I/O: one ``Volume`` type for NIfTI (nibabel), NRRD, MHA/MHD and DICOM series (SimpleITK).

A ``Volume`` holds the voxels in file index order (i, j, k) exactly as nibabel returns them, in HU, and a 4x4
affine mapping voxel indices to RAS+ world millimetres (nibabel's convention). SimpleITK images (LPS physical
space, arrays in (k, j, i) order) are converted to the same convention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctvl_cli.errors import InputError

NIFTI_EXT = (".nii.gz", ".nii")
ITK_EXT = (".nrrd", ".nhdr", ".mha", ".mhd")
VOLUME_EXT = NIFTI_EXT + ITK_EXT
MAX_AXIS = 4096
MIN_AXIS = 2
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True, eq=False)
class Volume:
    array: np.ndarray  # (i, j, k), HU; int16 when stored unscaled as int16, else float32
    affine: np.ndarray  # 4x4 voxel -> RAS+ mm
    source: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def axcodes(self) -> tuple[str, str, str]:
        import nibabel as nib

        return tuple(nib.aff2axcodes(self.affine))  # type: ignore[return-value]


def is_dicom_file(p: Path) -> bool:
    if p.suffix.lower() == ".dcm":
        return True
    try:
        with p.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def is_volume_file(p: Path) -> bool:
    return p.name.lower().endswith(VOLUME_EXT)


def _check(path: str, arr: np.ndarray, affine: np.ndarray, max_voxels: int) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise InputError(
            f"expected a 3-D volume, got shape {tuple(arr.shape)}",
            path=path,
            hint="pass one 3-D CT series (a trailing 4th axis of size 1 is accepted)",
        )
    if any(s < MIN_AXIS or s > MAX_AXIS for s in arr.shape) or arr.size > max_voxels:
        raise InputError(
            f"implausible volume size {tuple(arr.shape)}",
            path=path,
            hint=f"each axis must be {MIN_AXIS}..{MAX_AXIS} voxels and at most {max_voxels} voxels",
        )
    if not np.isfinite(affine).all():
        raise InputError("non-finite affine/spacing in header", path=path, hint="fix the image header")
    sp = np.linalg.norm(affine[:3, :3], axis=0)
    if not (np.isfinite(sp).all() and (sp > 1e-6).all()) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(
            f"invalid voxel spacing {tuple(round(float(s), 6) for s in sp)}",
            path=path,
            hint="spacing must be positive in all three axes",
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(
            "volume contains NaN or infinite voxels", path=path, hint="clean or re-export the image"
        )
    return arr


def _load_nifti(path: str, max_voxels: int) -> Volume:
    import nibabel as nib

    try:
        img = _nifti_image(path)
        if len(img.shape) < 3:
            raise InputError(f"expected a 3-D volume, got shape {tuple(img.shape)}", path=path)
        n = int(np.prod(img.shape))
        if n > max_voxels * max(1, int(np.prod(img.shape[3:]))) or n > 4 * max_voxels:
            raise InputError(f"implausible volume size {tuple(img.shape)}", path=path)
        if int(img.header.get("sform_code", 0)) == 0:
            # nibabel silently replaces zero pixdims by 1 on load; the raw header tells the truth
            with nib.openers.ImageOpener(path) as fh:
                raw = type(img.header).from_fileobj(fh, check=False)  # reads only the header
            pix = np.asarray(raw["pixdim"][1:4], dtype=np.float64)
            if not (np.isfinite(pix).all() and (pix > 0).all()):
                raise InputError(
                    f"invalid voxel spacing {tuple(float(x) for x in pix)} in header",
                    path=path,
                    hint="spacing must be positive in all three axes; fix the header",
                )
        slope, inter = img.dataobj.slope, img.dataobj.inter
        raw = np.asarray(img.dataobj.get_unscaled())
        if (
            (slope in (1.0, None) or not np.isfinite(slope))
            and (inter in (0.0, None) or not np.isfinite(inter))
            and raw.dtype in (np.int16, np.uint8, np.int8)
        ):
            arr = raw.astype(np.int16, copy=False)
        elif raw.dtype == np.float32 and slope in (1.0, None) and inter in (0.0, None):
            arr = raw
        else:
            arr = np.asarray(img.dataobj, dtype=np.float32)
        affine = np.asarray(img.affine, dtype=np.float64)
    except InputError:
        raise
    except MemoryError:
        raise InputError("volume too large to load", path=path) from None
    except Exception as e:
        raise InputError(
            f"unreadable or truncated NIfTI ({_short(e)})",
            path=path,
            hint="check the file is complete (re-copy or re-export it)",
        ) from None
    return Volume(array=_check(path, arr, affine, max_voxels), affine=affine, source=path)


def _nifti_image(path: str):
    """nibabel image; .nii.gz is inflated with ISA-L (``isal``, ~3x faster than zlib) when it is installed."""
    import nibabel as nib

    if path.lower().endswith(".gz"):
        try:
            from isal import igzip
        except ImportError:
            return nib.load(path)
        with open(path, "rb") as fh:
            data = igzip.decompress(fh.read())
        klass = nib.Nifti2Image if int.from_bytes(data[:4], "little") == 540 else nib.Nifti1Image
        return klass.from_bytes(data)
    return nib.load(path)


def _itk_to_volume(path: str, img, max_voxels: int) -> Volume:
    import SimpleITK as sitk

    if img.GetDimension() == 4 and img.GetSize()[3] == 1:
        img = img[:, :, :, 0]
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"expected a 3-D scalar volume, got {img.GetDimension()}-D with "
            f"{img.GetNumberOfComponentsPerPixel()} components",
            path=path,
        )
    arr = sitk.GetArrayViewFromImage(img).transpose(2, 1, 0)  # (k,j,i) -> (i,j,k)
    arr = np.ascontiguousarray(arr)
    if arr.dtype not in (np.int16, np.float32):
        arr = arr.astype(
            np.int16 if arr.dtype.kind in "iu" and arr.min() >= -32768 and arr.max() <= 32767 else np.float32
        )
    direction = np.array(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    spacing = np.array(img.GetSpacing(), dtype=np.float64)
    origin = np.array(img.GetOrigin(), dtype=np.float64)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = LPS_TO_RAS @ origin
    return Volume(array=_check(path, arr, affine, max_voxels), affine=affine, source=path)


def _load_itk(path: str, max_voxels: int) -> Volume:
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(path)
        reader.ReadImageInformation()
        size = reader.GetSize()
        if len(size) >= 3 and int(np.prod(size[:3])) > max_voxels:
            raise InputError(f"implausible volume size {tuple(size)}", path=path)
        img = reader.Execute()
    except InputError:
        raise
    except Exception as e:
        raise InputError(
            f"unreadable image ({_short(e)})", path=path, hint="check the file is complete"
        ) from None
    return _itk_to_volume(path, img, max_voxels)


def _load_dicom_dir(path: str, max_voxels: int) -> Volume:
    import SimpleITK as sitk

    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(path) or []
        if not ids:
            raise InputError("no DICOM series in folder", path=path, hint="pass a folder with one CT series")
        files = max((sitk.ImageSeriesReader.GetGDCMSeriesFileNames(path, s) for s in ids), key=len)
        if len(files) < MIN_AXIS:
            raise InputError(
                f"DICOM series has only {len(files)} slice(s)", path=path, hint="a 3-D CT series is needed"
            )
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        img = reader.Execute()
    except InputError:
        raise
    except Exception as e:
        raise InputError(
            f"unreadable DICOM series ({_short(e)})", path=path, hint="check the series is complete"
        ) from None
    return _itk_to_volume(path, img, max_voxels)


def _short(e: BaseException) -> str:
    s = " ".join(str(e).split())
    return (s[:160] + "...") if len(s) > 160 else (s or type(e).__name__)


def load_volume(path: str | os.PathLike, *, max_voxels: int = 1_000_000_000) -> Volume:
    """Read a CT volume. Raises :class:`InputError` with a one-line reason for anything unusable."""
    p = Path(path)
    s = str(path)
    if not p.exists():
        raise InputError("no such file or directory", path=s)
    if p.is_dir():
        return _load_dicom_dir(s, max_voxels)
    name = p.name.lower()
    if name.endswith(NIFTI_EXT):
        return _load_nifti(s, max_voxels)
    if name.endswith(ITK_EXT):
        return _load_itk(s, max_voxels)
    if is_dicom_file(p):
        raise InputError(
            "a single DICOM file is not a volume", path=s, hint="pass the folder holding the series"
        )
    raise InputError(
        f"unsupported file type {p.suffix or '(none)'}",
        path=s,
        hint="use NIfTI (.nii/.nii.gz), NRRD, MHA/MHD or a DICOM series folder",
    )
