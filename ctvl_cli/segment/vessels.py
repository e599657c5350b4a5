"""Aorta of contrast-enhanced chest CT for the builtin backend.

The descending aorta is the round, contrast-filled section on the left of the spine, just in front of it. It is
found slice by slice, then grown through the blood pool after an erosion that detaches it from its neighbours
(heart, pulmonary artery, vertebrae), and dilated back inside the blood pool.
"""

from __future__ import annotations

import numpy as np

from ctvl_cli.segment import morph

BLOOD_HU = (180.0, 700.0)
ERODE_MM = 4.0


def aorta_from_contrast(m) -> np.ndarray:
    a, sp = m.a, m.sp
    empty = np.zeros(a.shape, bool)
    body = m.body
    if not body.any():
        return empty
    blood = body & (a > BLOOD_HU[0]) & (a < BLOOD_HU[1]) & ~m.lung_left & ~m.lung_right
    blood &= ~morph.dilate(m.skeleton, sp, 1.5)
    seed = _descending_seed(m, blood)
    if seed is None:
        return empty
    core = morph.erode(blood, sp, ERODE_MM)
    lab, _ = morph.components(core)
    i = lab[seed]
    if i == 0:
        return empty
    grown = morph.dilate(lab == i, sp, ERODE_MM + 1.0) & blood
    return morph.largest(grown)


def _descending_seed(m, blood: np.ndarray) -> tuple[int, int, int] | None:
    """Centre of the most circular blood section of 15-35 mm diameter on the patient's left of the midline,
    within 50 mm in front of the spine; searched over the lower two thirds of the scan."""
    a, sp, sk = m.a, m.sp, m.skeleton
    best, best_score = None, 0.0
    nz = a.shape[2]
    w = max(1, int(10 / sp[0]))
    for k in range(0, max(1, 2 * nz // 3), 2):
        s = blood[:, :, k]
        bone = sk[:, :, k]
        if not s.any() or not bone.any():
            continue
        # the spine: the densest column of bone in the posterior 80 mm of the slice's skeleton
        ys = np.nonzero(bone.any(axis=0))[0]
        back = bone & (np.arange(bone.shape[1])[None, :] < ys[0] + 80.0 / sp[1])
        counts = np.convolve(back.sum(axis=1), np.ones(2 * w + 1), mode="same")
        mid = int(np.argmax(counts))
        col = back[max(mid - w, 0) : mid + w + 1]
        if not col.any():
            continue
        y_front = np.nonzero(col.any(axis=0))[0].max()
        lab, sizes = morph.components(s)
        for i in range(1, len(sizes)):
            area = sizes[i] * sp[0] * sp[1]
            if not np.pi * 7.5**2 <= area <= np.pi * 17.5**2:
                continue
            px, py = np.nonzero(lab == i)
            cx, cy = px.mean(), py.mean()
            # RAS: the patient's left is smaller x; anterior is larger y
            if cx > mid + w or not -10.0 <= (cy - y_front) * sp[1] <= 50.0:
                continue
            box = (np.ptp(px) + 1) * (np.ptp(py) + 1)
            fill = sizes[i] / box
            ratio = min(np.ptp(px) + 1, np.ptp(py) + 1) / max(np.ptp(px) + 1, np.ptp(py) + 1)
            score = fill * ratio
            if score > best_score and fill > 0.6 and ratio > 0.7:
                best, best_score = (int(np.rint(cx)), int(np.rint(cy)), int(k)), score
    return best
