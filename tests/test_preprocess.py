"""The preprocessing engine against independent computations (F.interpolate, nibabel, SimpleITK)."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from ctvl_cli.errors import CardError
from ctvl_cli.io.volume import Volume, load_volume
from ctvl_cli.preprocess.engine import crop_pad, preprocess, reference_preprocess
from ctvl_cli.preprocess.spec import PreprocessSpec
from tests.helpers import phantom_array

ALL_CODES = [
    "".join(p) for perm in itertools.permutations(["RL", "AP", "SI"]) for p in itertools.product(*perm)
]


def _vol(arr, affine=None) -> Volume:
    return Volume(
        array=arr, affine=np.diag([-1.5, -1.5, 3.0, 1.0]) if affine is None else affine, source="synthetic"
    )


def _spec(**kw) -> PreprocessSpec:
    d = {
        "orientation": "RAS",
        "spacing": [2.0, 2.0, 2.0],
        "shape": [40, 36, 30],
        "hu_window": [-1000, 1000],
        "output_range": [-1, 1],
        "pad_value": -1.0,
    }
    d.update(kw)
    return PreprocessSpec.from_dict(d)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"interpolation": "nearest"},
        {"clip_before_resample": False, "output_range": [0, 1], "pad_value": 0.0},
        {"spacing": [0.9, 1.1, 1.7], "shape": [31, 33, 35]},
        {"orientation": "SLP", "shape": [20, 50, 21]},
        {"resample": "monai"},
        {"resample": "monai", "interpolation": "nearest", "shape": [50, 60, 45]},
        {
            "resample": "monai",
            "spacing": [0.9, 1.1, 1.7],
            "shape": [31, 33, 35],
            "clip_before_resample": False,
        },
        {"resample": "monai", "orientation": "SLP", "shape": [20, 50, 21]},
    ],
)
def test_engine_equals_full_volume_interpolate(kw):
    """size: F.interpolate on the whole volume; monai: grid_sample on MONAI's output grid (border padding)."""
    v = _vol(phantom_array(shape=(57, 44, 23)))
    a, b = preprocess(v, _spec(**kw)), reference_preprocess(v, _spec(**kw))
    assert a.shape == b.shape == (1, *_spec(**kw).shape)
    assert float((a - b).abs().max()) < 1e-5


def test_monai_output_grid():
    from ctvl_cli.preprocess.engine import output_size

    assert output_size(64, 5.0, 3.0, "monai") == 106  # round(63 * 5 / 3 + 1)
    assert output_size(4, 1.0, 2.0, "monai") == 2  # 2.5 rounds half to even, as numpy does
    assert output_size(6, 1.0, 2.0, "monai") == 4  # 3.5 -> 4
    assert output_size(64, 5.0, 3.0) == 106 and output_size(10, 1.0, 3.0) == 3  # CT-CLIP's int(n * ratio)
    # voxel 0 stays in place: first output voxel equals the first input voxel along each axis
    arr = np.random.default_rng(0).normal(size=(9, 8, 7)).astype(np.float32) * 100
    spec = _spec(resample="monai", spacing=[1.0, 1.0, 2.0], shape=[20, 20, 20], hu_window=[-1e4, 1e4])
    out = preprocess(_vol(arr, np.diag([1.0, 1.0, 1.0, 1.0])), spec)[0]
    n_out = [output_size(n, s, t, "monai") for n, s, t in zip(arr.shape, (1, 1, 1), spec.spacing)]
    lo = [(20 - n) // 2 for n in n_out]
    assert abs(float(out[lo[0], lo[1], lo[2]]) - arr[0, 0, 0] / 1e4) < 1e-6


@pytest.mark.parametrize("codes", ALL_CODES)
def test_every_target_orientation_matches_nibabel(codes):
    arr = phantom_array(shape=(12, 10, 8)).astype(np.float32)
    aff = np.array(
        [[0, 0, 2.0, 5], [-1.5, 0, 0, 3], [0, 1.0, 0, -7], [0, 0, 0, 1]]
    )  # a rotated, non-LPS grid
    v = _vol(arr, aff)
    sp_out = [None] * 3
    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(aff), nib.orientations.axcodes2ornt(codes)
    )
    ref = nib.orientations.apply_orientation(arr, ornt)
    zooms = np.linalg.norm(aff[:3, :3], axis=0)
    for i, (ax, _) in enumerate(ornt):
        sp_out[int(ax)] = float(zooms[i])
    spec = _spec(
        orientation=codes,
        spacing=sp_out,
        shape=list(ref.shape),
        hu_window=[-2000, 2000],
        output_range=[-2000, 2000],
    )
    out = preprocess(v, spec)[0].numpy()
    assert np.allclose(out, ref, atol=1e-3)
    new_aff = aff @ nib.orientations.inv_ornt_aff(ornt, arr.shape)
    assert "".join(nib.aff2axcodes(new_aff)) == codes


def test_window_range_and_padding():
    arr = np.full((10, 10, 10), 3000, np.int16)
    arr[:5] = -3000
    out = preprocess(
        _vol(arr, np.eye(4)), _spec(spacing=[1, 1, 1], shape=[12, 10, 8], output_range=[0, 1], pad_value=-7.0)
    )[0]
    assert out[0].max() == -7.0 and out[-1].min() == -7.0  # one padded slice each side on axis 0
    inner = out[1:-1]
    assert inner.min() == 0.0 and inner.max() == 1.0


@pytest.mark.parametrize("n,s", [(10, 7), (11, 7), (10, 13), (11, 14), (9, 9)])
def test_crop_pad_conventions(n, s):
    x = torch.arange(n, dtype=torch.float32)[:, None, None].expand(n, 1, 1)
    y = crop_pad(x, (s, 1, 1), -1.0)[:, 0, 0]
    if n >= s:
        st = (n - s) // 2
        assert y.tolist() == list(range(st, st + s))
    else:
        before = (s - n) // 2
        assert y[:before].eq(-1).all() and y[before : before + n].tolist() == list(range(n))


def test_deterministic_and_same_on_int16_and_float():
    arr = phantom_array()
    a = preprocess(_vol(arr), _spec())
    b = preprocess(_vol(arr), _spec())
    c = preprocess(_vol(arr.astype(np.float32)), _spec())
    assert torch.equal(a, b) and float((a - c).abs().max()) < 1e-6


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"orientation": "RRS"}, "orientation"),
        ({"spacing": [1, 0, 1]}, "spacing"),
        ({"shape": [1, 2]}, "shape"),
        ({"hu_window": [10, -10]}, "hu_window"),
        ({"interpolation": "cubic"}, "interpolation"),
        ({"bogus": 1}, "unknown"),
    ],
)
def test_invalid_specs_rejected(bad, match):
    with pytest.raises(CardError, match=match):
        _spec(**bad)


def test_fingerprint_changes_with_any_field():
    assert _spec().fingerprint() != _spec(pad_value=0.0).fingerprint()
    assert _spec().fingerprint() == PreprocessSpec.from_dict(_spec().to_dict()).fingerprint()


@pytest.mark.integration
def test_real_scan_resampling_matches_simpleitk(shared):
    """Same output grid computed independently with SimpleITK's linear resampler (in the file's own orientation)."""
    path = shared("data", "lung_pet_ct_dx", "A0002_chest_ct.nii.gz")
    v = load_volume(path)
    codes = "".join(v.axcodes)
    target = [1.5, 1.5, 3.0]
    n_out = [int(n * s / t) for n, s, t in zip(v.shape, v.spacing, target)]
    spec = _spec(
        orientation=codes, spacing=target, shape=n_out, hu_window=[-1024, 3071], output_range=[-1024, 3071]
    )
    ours = preprocess(v, spec)[0].numpy()
    img = sitk.ReadImage(str(path), sitk.sitkFloat32)
    scale = [n / m for n, m in zip(v.shape, n_out)]
    idx0 = [0.5 * s - 0.5 for s in scale]  # continuous input index of output voxel 0
    f = sitk.ResampleImageFilter()
    f.SetSize(n_out)
    f.SetOutputSpacing([sp * s for sp, s in zip(img.GetSpacing(), scale)])
    f.SetOutputDirection(img.GetDirection())
    f.SetOutputOrigin(img.TransformContinuousIndexToPhysicalPoint(idx0))
    f.SetInterpolator(sitk.sitkLinear)
    ref = sitk.GetArrayFromImage(f.Execute(img)).transpose(2, 1, 0)
    inner = tuple(
        slice(2, n - 2) for n in n_out
    )  # SimpleITK does not clamp outside the first/last voxel centre
    assert ours.shape == ref.shape
    assert np.abs(ours[inner] - ref[inner]).max() < 0.05  # HU; float32 rounding of positions/weights


@pytest.mark.integration
def test_real_scan_anatomy_lands_where_the_orientation_says(shared):
    """In RAS output the spine (dense bone near the midline) is posterior to the body centre, and LAS is RAS
    mirrored left-right."""
    v = load_volume(shared("data", "lung_pet_ct_dx", "A0001_chest_ct.nii.gz"))
    spec = _spec(
        spacing=[2.0, 2.0, 5.0],
        shape=[201, 201, 64],
        hu_window=[-1024, 3071],
        output_range=[-1024, 3071],
        pad_value=-1024.0,
    )
    ras = preprocess(v, spec)[0].numpy()
    body = ras > -300
    bone = ras > 250
    mid = slice(90, 110)  # central band of x (left-right)
    body_y = np.nonzero(body)[1].mean()
    spine_y = np.nonzero(bone[mid])[1].mean()
    assert spine_y < body_y - 10  # posterior = low y in RAS
    las = preprocess(v, PreprocessSpec.from_dict({**spec.to_dict(), "orientation": "LAS"}))[0].numpy()
    assert np.allclose(las, ras[::-1], atol=1e-3)
    lps = preprocess(v, PreprocessSpec.from_dict({**spec.to_dict(), "orientation": "LPS"}))[0].numpy()
    assert np.allclose(lps, ras[::-1, ::-1], atol=1e-3)
    assert ras.min() >= -1024 and ras.max() <= 3071
