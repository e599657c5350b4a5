"""Volume reading: formats, affines, and one-line errors naming the file."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from ctvl_cli.errors import InputError
from ctvl_cli.io.discover import discover_inputs
from ctvl_cli.io.volume import load_volume
from tests.helpers import phantom_array, write_nifti


def test_nifti_roundtrip_keeps_int16_and_affine(tmp_path):
    arr = phantom_array()
    aff = np.array([[-0.7, 0, 0, 10], [0, -0.7, 0, 20], [0, 0, 2.5, -30], [0, 0, 0, 1]])
    v = load_volume(write_nifti(tmp_path / "a.nii.gz", arr, aff))
    assert v.array.dtype == np.int16 and np.array_equal(v.array, arr)
    assert np.allclose(v.affine, aff) and v.axcodes == ("L", "P", "S")
    assert v.spacing == pytest.approx((0.7, 0.7, 2.5))


def test_scaled_nifti_is_float_hu(tmp_path):
    img = nib.Nifti1Image(np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    img.header.set_slope_inter(2.0, -1024)
    nib.save(img, tmp_path / "s.nii")
    v = load_volume(tmp_path / "s.nii")
    assert v.array.dtype == np.float32 and v.array[1, 2, 3] == (12 + 8 + 3) * 2 - 1024


@pytest.mark.parametrize("ext", [".nrrd", ".mha"])
def test_itk_formats_match_nibabel_convention(tmp_path, ext):
    arr = phantom_array()
    nii = load_volume(write_nifti(tmp_path / "a.nii.gz", arr))
    img = sitk.ReadImage(str(tmp_path / "a.nii.gz"))
    sitk.WriteImage(img, str(tmp_path / f"a{ext}"))
    v = load_volume(tmp_path / f"a{ext}")
    assert np.array_equal(v.array, nii.array)
    assert np.allclose(v.affine, nii.affine, atol=1e-5)


def test_trailing_singleton_axis_accepted(tmp_path):
    v = load_volume(write_nifti(tmp_path / "a.nii.gz", phantom_array()[..., None]))
    assert v.array.ndim == 3


@pytest.mark.parametrize(
    "case,match",
    [
        ("truncated", "unreadable or truncated"),
        ("2d", "3-D"),
        ("4d", "3-D"),
        ("nan", "NaN"),
        ("zero_spacing", "spacing"),
        ("ext", "unsupported file type"),
        ("missing", "no such file"),
        ("tiny", "implausible volume size"),
    ],
)
def test_bad_inputs_are_one_line_errors_naming_the_file(tmp_path, case, match):
    p = tmp_path / "bad.nii.gz"
    if case == "truncated":
        write_nifti(tmp_path / "good.nii.gz", phantom_array())
        data = (tmp_path / "good.nii.gz").read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif case == "2d":
        write_nifti(p, np.zeros((10, 10), np.int16))
    elif case == "4d":
        write_nifti(p, np.zeros((10, 10, 10, 3), np.int16))
    elif case == "nan":
        a = phantom_array().astype(np.float32)
        a[3, 3, 3] = np.nan
        write_nifti(p, a)
    elif case == "zero_spacing":
        p = tmp_path / "bad.nii"
        img = nib.Nifti1Image(phantom_array(), np.eye(4))
        img.set_sform(None, code=0)
        img.set_qform(np.eye(4), code=1)
        nib.save(img, p)
        data = bytearray(p.read_bytes())
        data[84:88] = np.float32(0.0).tobytes()  # pixdim[2] = 0 (header byte offset 76 + 4*2)
        p.write_bytes(bytes(data))
    elif case == "ext":
        p = tmp_path / "scan.png"
        p.write_bytes(b"x")
    elif case == "missing":
        p = tmp_path / "nope.nii.gz"
    elif case == "tiny":
        write_nifti(p, np.zeros((10, 1, 10), np.int16))
    with pytest.raises(InputError, match=match) as e:
        load_volume(p)
    msg = e.value.one_line()
    assert "\n" not in msg and msg.startswith(str(p))


def test_truncated_gzip_detected_while_reading_voxels(tmp_path):
    raw = tmp_path / "a.nii"
    write_nifti(raw, phantom_array(shape=(64, 64, 64)))
    data = gzip.compress(raw.read_bytes())
    (tmp_path / "cut.nii.gz").write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(InputError, match="truncated"):
        load_volume(tmp_path / "cut.nii.gz")


def test_discover_dirs_globs_lists_and_dicom_series(tmp_path, shared):
    (tmp_path / "sub").mkdir()
    a = write_nifti(tmp_path / "a.nii.gz", phantom_array())
    b = write_nifti(tmp_path / "sub" / "b.nii", phantom_array())
    (tmp_path / "notes.txt").write_text("x")
    assert discover_inputs([str(tmp_path)]) == sorted([str(a), str(b)])
    assert discover_inputs([str(tmp_path / "**" / "*.nii*")]) == sorted([str(a), str(b)])
    lst = tmp_path / "list.txt"
    lst.write_text("# inputs\nsub/b.nii\na.nii.gz\n")
    assert discover_inputs([f"@{lst}", str(a)]) == sorted([str(a), str(b)])
    dicom = shared("data", "lung_pet_ct_dx", "A0002_thorax_8mm_B40f_dicom")
    assert discover_inputs([str(dicom.parent)]).count(str(dicom)) == 1
    with pytest.raises(InputError, match="no such file"):
        discover_inputs([str(tmp_path / "missing.nii.gz")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no CT volumes"):
        discover_inputs([str(tmp_path / "empty")])


@pytest.mark.integration
def test_real_nifti_equals_its_dicom_series(shared):
    nii = load_volume(shared("data", "lung_pet_ct_dx", "A0001_chest_ct.nii.gz"))
    dcm = load_volume(shared("data", "lung_pet_ct_dx", "A0001_chest_5mm_dicom"))
    assert nii.shape == dcm.shape == (512, 512, 64)
    assert np.array_equal(nii.array, dcm.array)
    assert np.allclose(nii.affine, dcm.affine, atol=1e-3)
    assert nii.axcodes == ("L", "P", "S")
