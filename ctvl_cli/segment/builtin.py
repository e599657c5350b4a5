"""The ``builtin`` backend: classical (threshold + morphology) organ segmentation of chest CT, CPU, no weights.

Works in RAS voxel order (the volume is reoriented by axis permutation/flip only, so labels map back exactly).
Order: outside air -> body -> air inside the body -> airway tree (region growing from the trachea, the threshold
raised until the tree leaks) -> lungs (air components that look like parenchyma, minus the airways, split left/
right, vessels filled in) -> skeleton -> mediastinum (between the lungs, in front of the spine) -> aorta (contrast
scans only: the bright tube beside the spine, grown in the blood pool). Organs that are not found stay empty and
each gets a warning; nothing here raises on an unusual scan.
"""

from __future__ import annotations

import numpy as np

from ctvl_cli.io.volume import Volume
from ctvl_cli.segment import morph
from ctvl_cli.segment.labels import Segmentation, builtin_organs, organ_labels

ALGORITHM_VERSION = "builtin-1"
AIR_HU = -400.0  # air/lung vs tissue
PURE_AIR_HU = -950.0
ROOM_AIR_MEDIAN_HU = -930.0  # room air vs lung parenchyma (median of a connected air region)
WORK_SPACING_MM = 1.4


def _to_ras(vol: Volume):
    import nibabel.orientations as no

    cur = no.io_orientation(vol.affine)
    xf = no.ornt_transform(cur, no.axcodes2ornt(("R", "A", "S")))
    a = no.apply_orientation(vol.array, xf)
    sp = [0.0, 0.0, 0.0]
    for i, (o, _) in enumerate(xf):
        sp[int(o)] = vol.spacing[i]
    back = no.ornt_transform(no.axcodes2ornt(("R", "A", "S")), cur)
    return np.asarray(a, np.float32), tuple(sp), back


def segment_builtin(vol: Volume, organs: list[str] | None = None) -> Segmentation:
    """Segment ``organs`` (default: every organ the builtin backend knows) of one volume."""
    import nibabel.orientations as no

    want = list(organs) if organs is not None else builtin_organs()
    a, sp, back = _to_ras(vol)
    full_shape = a.shape
    f = [max(1, round(WORK_SPACING_MM / s)) for s in sp[:2]] + [1]
    if f != [1, 1, 1]:  # fine in-plane grids are segmented at ~1.5 mm (block means), labels upsampled after
        pad = [(0, (-n) % k) for n, k in zip(a.shape, f)]
        a = np.pad(a, pad, mode="edge")
        a = a.reshape(a.shape[0] // f[0], f[0], a.shape[1] // f[1], f[1], a.shape[2]).mean(axis=(1, 3))
        sp = (sp[0] * f[0], sp[1] * f[1], sp[2])
    warnings: list[str] = []
    m = _Masks(a.astype(np.float32), sp)
    lab = organ_labels()
    out = np.zeros(a.shape, np.uint8)
    # lowest priority first; later organs overwrite
    order = ["body", "mediastinum", "skeleton", "aorta", "lung_left", "lung_right", "trachea"]
    for o in want:
        if o not in order:
            warnings.append(f"{o}: not segmented by the builtin backend (use --backend totalsegmentator)")
    for o in order:
        if o not in want:
            continue
        mask = getattr(m, o)
        if not mask.any():
            warnings.append(f"{o} not found: {m.why.get(o, 'not in the field of view?')}")
            continue
        out[mask] = lab[o]
    if f != [1, 1, 1]:
        out = np.repeat(np.repeat(out, f[0], axis=0), f[1], axis=1)[: full_shape[0], : full_shape[1]]
    labels = np.ascontiguousarray(no.apply_orientation(out, back))
    return Segmentation(labels=labels, organs=want, backend="builtin", warnings=warnings)


class _Masks:
    """Lazily computed organ masks of one RAS volume; each property caches its result."""

    def __init__(self, a: np.ndarray, sp) -> None:
        self.a, self.sp = a, sp
        self.vox_ml = float(np.prod(sp)) / 1000.0
        self.why: dict[str, str] = {}
        self._c: dict[str, np.ndarray] = {}

    def _px(self, mm2: float) -> int:
        return max(1, int(mm2 / (self.sp[0] * self.sp[1])))

    # ---- body ----------------------------------------------------------------------------------------------
    def _border_air(self) -> tuple[np.ndarray, np.ndarray]:
        """Air components touching the border of their axial slice, split by density: room air (mostly below
        -950 HU) is outside the patient; denser ones are lungs cut by the field of view of a cropped scan."""
        if "outside" not in self._c:
            a = self.a
            air = a < AIR_HU
            out = np.zeros(a.shape, bool)
            cut = np.zeros(a.shape, bool)
            for k in range(a.shape[2]):
                s = air[:, :, k]
                if not s.any():
                    continue
                lab, sizes = morph.components(s)
                edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
                edge = edge[edge > 0]
                if not len(edge):
                    continue
                room = np.zeros(len(sizes), bool)
                vals = a[:, :, k]
                for e in edge:
                    room[e] = np.median(vals[lab == e]) < ROOM_AIR_MEDIAN_HU
                out[:, :, k] = np.isin(lab, edge[room[edge]])
                cut[:, :, k] = np.isin(lab, edge[~room[edge]])
            self._c["outside"], self._c["cut_air"] = out, cut
        return self._c["outside"], self._c["cut_air"]

    @property
    def body(self) -> np.ndarray:
        """Largest tissue component after an opening that detaches the table, with the air it encloses (slice
        by slice) and lungs cut by the field of view."""
        if "body" not in self._c:
            _, cut = self._border_air()
            tissue = morph.largest(morph.opening(self.a > -500, self.sp, (4.0, 4.0, 0.0)))
            b = morph.fill_slices(tissue | cut)
            b = morph.largest(b)
            if b.sum() * self.vox_ml < 50:
                self.why["body"] = "no body larger than 50 mL"
                b = np.zeros_like(b)
            self._c["body"] = b
        return self._c["body"]

    # ---- airways and lungs -------------------------------------------------------------------------------------
    @property
    def air(self) -> np.ndarray:
        """Air-filled components inside the body that look like lung parenchyma (not bowel gas)."""
        if "air" not in self._c:
            a = self.a
            cand = self.body & (a < AIR_HU)
            lab, sizes = morph.components(cand)
            big = [i for i in range(1, len(sizes)) if sizes[i] * self.vox_ml >= 5.0]
            ok = [i for i in big if np.median(a[lab == i]) >= ROOM_AIR_MEDIAN_HU]  # parenchyma, not bowel gas
            if not ok:
                self.why["air"] = "no air-filled lung-like region inside the body"
            self._c["air"] = np.isin(lab, ok) if ok else np.zeros(a.shape, bool)
        return self._c["air"]

    def _trachea_seed(self) -> tuple[int, int, int] | None:
        a, body = self.a, self.body
        zs = np.nonzero(body.any(axis=(0, 1)))[0]
        if not len(zs):
            return None
        lung = (a > -900) & (a < AIR_HU)
        for k in zs[::-1]:  # from the top
            s = body[:, :, k] & (a[:, :, k] < -900)
            if not s.any():
                continue
            bx = np.nonzero(body[:, :, k].any(axis=1))[0]
            cx, half = 0.5 * (bx[0] + bx[-1]), 0.5 * (bx[-1] - bx[0])
            lab, sizes = morph.components(s)
            for i in range(1, len(sizes)):
                area = sizes[i] * self.sp[0] * self.sp[1]
                if not 80 <= area <= 900:
                    continue
                xs, ys = np.nonzero(lab == i)
                box = (np.ptp(xs) + 1) * (np.ptp(ys) + 1)
                if sizes[i] / box < 0.45 or abs(xs.mean() - cx) > 0.25 * half:
                    continue
                ring = morph.dilate(lab == i, self.sp[:2], 10.0) & ~morph.dilate(lab == i, self.sp[:2], 4.0)
                if lung[:, :, k][ring].mean() > 0.25:  # a bronchus inside the lung, not the trachea
                    continue
                return int(np.rint(xs.mean())), int(np.rint(ys.mean())), int(k)
        return None

    @property
    def airways(self) -> np.ndarray:
        """Trachea and main bronchi: region growing from a seed in the trachea, threshold raised from -950 HU
        until the grown volume jumps (leak into the parenchyma); cut 35 mm below the carina."""
        if "airways" not in self._c:
            import SimpleITK as sitk

            a = self.a
            res = np.zeros(a.shape, bool)
            seed = self._trachea_seed()
            if seed is None:
                self.why["trachea"] = "no trachea found (scan does not reach the upper thorax?)"
            else:
                blocked = np.where(self.body, a, 3000.0)
                im = morph.img(blocked, self.sp, np.float32)
                prev, prev_n = None, 0
                for t in range(-950, -799, 20):
                    g = morph.arr(sitk.ConnectedThreshold(im, seedList=[seed], lower=-3000.0, upper=float(t)))
                    g = g.astype(bool)
                    n = int(g.sum())
                    leak = prev_n * self.vox_ml >= 15.0 and n > 2.0 * prev_n
                    if prev is not None and (leak or n * self.vox_ml > 250):
                        break
                    prev, prev_n = g, n
                res = prev if prev is not None else res
                zs = np.nonzero(res.any(axis=(0, 1)))[0]
                if len(zs) == 0 or (zs[-1] - zs[0] + 1) * self.sp[2] < 40.0 or not self._reaches_lungs(res):
                    self.why["trachea"] = "no air tube leading into the lungs (not a chest scan?)"
                    res = np.zeros(a.shape, bool)
                else:
                    res = self._cut_below_carina(res)
            self._c["airways"] = res
        return self._c["airways"]

    def _reaches_lungs(self, tree: np.ndarray) -> bool:
        """The trachea starts above the lungs (or at the top of a scan that cuts them) and runs into them."""
        air = self.air
        if not air.any():
            return False
        top_lung = np.nonzero(air.any(axis=(0, 1)))[0][-1]
        top_tree = np.nonzero(tree.any(axis=(0, 1)))[0][-1]
        return top_tree >= top_lung - 1 and (tree & air).any()

    def _cut_below_carina(self, tree: np.ndarray) -> np.ndarray:
        zs = np.nonzero(tree.any(axis=(0, 1)))[0]
        min_px = self._px(20.0)
        for k in zs[::-1]:
            _, sizes = morph.components(tree[:, :, k])
            if (sizes[1:] >= min_px).sum() >= 2:
                cut = k - round(35.0 / self.sp[2])
                out = tree.copy()
                out[:, :, : max(cut, 0)] = False
                return out
        return tree

    @property
    def trachea(self) -> np.ndarray:
        return self.airways

    def _lungs_split(self) -> tuple[np.ndarray, np.ndarray]:
        if "lung_left" in self._c:
            return self._c["lung_left"], self._c["lung_right"]
        sp = self.sp
        raw = self.air & ~morph.dilate(self.airways, sp, 2.0)
        left = np.zeros(raw.shape, bool)
        right = np.zeros(raw.shape, bool)
        if raw.any():
            lab, sizes = morph.components(raw)
            body_x = np.nonzero(self.body.any(axis=(1, 2)))[0]
            mid = 0.5 * (body_x[0] + body_x[-1])
            two = self._two_lungs(lab, sizes)
            if two is None:
                two = self._split_by_erosion(raw)
            if two is None:  # fall back on the body's mid-sagittal plane
                xs = np.arange(raw.shape[0])[:, None, None]
                right, left = raw & (xs > mid), raw & (xs <= mid)
            else:
                ra, la = two
                d_r, d_l = morph.distance(ra, sp), morph.distance(la, sp)
                right, left = raw & (d_r <= d_l), raw & (d_r > d_l)
            right, left = self._fill_lung(right), self._fill_lung(left)
            left &= ~right
        self._c["lung_left"], self._c["lung_right"] = left, right
        return left, right

    def _two_lungs(self, lab: np.ndarray, sizes: np.ndarray):
        """(right, left) masks when the two largest components are two plausible lungs on opposite sides."""
        if len(sizes) < 3 or sizes[2] < 0.1 * sizes[1]:
            return None
        xs = np.arange(lab.shape[0])
        c = [float((xs[:, None, None] * (lab == i)).sum() / sizes[i]) for i in (1, 2)]
        if abs(c[0] - c[1]) < 20.0 / self.sp[0]:
            return None
        r, l_ = (1, 2) if c[0] > c[1] else (2, 1)  # RAS: larger x is the patient's right
        return lab == r, lab == l_

    def _split_by_erosion(self, raw: np.ndarray):
        for r in (3.0, 6.0, 10.0, 15.0):
            m = morph.erode(raw, self.sp, (r, r, 0.0))
            if not m.any():
                return None
            lab, sizes = morph.components(m)
            two = self._two_lungs(lab, sizes)
            if two is not None:
                return two
        return None

    def _fill_lung(self, m: np.ndarray) -> np.ndarray:
        """Vessels and airway walls inside a lung belong to it (as in lobe segmentations)."""
        if not m.any():
            return m
        f = morph.closing(m, self.sp, (3.0, 3.0, 0.0))
        f = morph.fill_slices(f | m, max_area_px=self._px(2500.0))
        return f & self.body & ~self.airways

    @property
    def lung_left(self) -> np.ndarray:
        return self._lungs_split()[0]

    @property
    def lung_right(self) -> np.ndarray:
        return self._lungs_split()[1]

    # ---- skeleton, mediastinum, aorta ----------------------------------------------------------------------
    @property
    def contrast(self) -> bool:
        """Contrast-enhanced: the blood pool between the lungs is brighter than 150 HU."""
        if "contrast" not in self._c:
            med = self._between_lungs()
            vals = self.a[med & (self.a > 0) & (self.a < 600)]
            self._c["contrast"] = np.array(len(vals) > 500 and np.percentile(vals, 75) > 150)
        return bool(self._c["contrast"])

    @property
    def skeleton(self) -> np.ndarray:
        if "skeleton" not in self._c:
            hi = 550.0 if self.contrast else 250.0
            seed = self.body & (self.a > hi)
            sk = morph.closing(seed, self.sp, 2.0)
            sk = morph.fill_slices(sk, max_area_px=self._px(1200.0)) & self.body
            lab, sizes = morph.components(sk)
            keep = np.nonzero(sizes * self.vox_ml >= 0.3)[0]
            self._c["skeleton"] = np.isin(lab, keep[keep > 0])
        return self._c["skeleton"]

    def _between_lungs(self) -> np.ndarray:
        if "between" not in self._c:
            left, right = self._lungs_split()
            xs = np.arange(left.shape[0])[:, None, None]
            big = left.shape[0] + 1
            l_max = np.where(left, xs, -1).max(axis=0)  # medial edge of the left lung (largest x) per (y, z)
            r_min = np.where(right, xs, big).min(axis=0)  # medial edge of the right lung per (y, z)
            ok = (l_max >= 0) & (r_min < big) & (r_min > l_max)
            between = ok[None] & (xs > l_max[None]) & (xs < r_min[None])
            area = (left | right).sum(axis=(0, 1))
            between[:, :, area < 0.3 * max(area.max(), 1)] = (
                False  # lung bases: liver and stomach lie between
            )
            self._c["between"] = between & self.body
        return self._c["between"]

    @property
    def mediastinum(self) -> np.ndarray:
        if "mediastinum" not in self._c:
            if not self.airways.any():
                self.why["mediastinum"] = (
                    "needs the trachea as a landmark (scan does not reach the upper thorax?)"
                )
                self._c["mediastinum"] = np.zeros(self.a.shape, bool)
                return self._c["mediastinum"]
            med = self._between_lungs() & ~self.lung_left & ~self.lung_right & ~self.airways
            sk = self.skeleton
            med &= ~morph.dilate(sk, self.sp, 3.0)
            # in front of the vertebral bodies: bone in the posterior-central band marks the spine
            ys = np.arange(med.shape[1])[None, :, None]
            xs = np.nonzero(self.body.any(axis=(1, 2)))[0]
            if len(xs):
                mid = int(0.5 * (xs[0] + xs[-1]))
                band = int(20.0 / self.sp[0])
                spine = sk[max(mid - band, 0) : mid + band].any(axis=0)  # (y, z)
                by = np.nonzero(self.body.any(axis=(0, 2)))[0]
                spine[int(0.5 * (by[0] + by[-1])) :] = False  # posterior half only (the sternum is anterior)
                yy = np.where(spine, np.arange(spine.shape[0])[:, None], -1).max(axis=0)  # front of the spine
                med &= ys > yy[None, None, :]
            med = morph.opening(med & (self.a > -300), self.sp, (3.0, 3.0, 0.0))
            self._c["mediastinum"] = morph.largest(med) if med.any() else med
            if not med.any():
                self.why["mediastinum"] = "the two lungs were not found side by side"
        return self._c["mediastinum"]

    @property
    def aorta(self) -> np.ndarray:
        if "aorta" not in self._c:
            from ctvl_cli.segment.vessels import aorta_from_contrast

            if not self.contrast:
                self.why["aorta"] = "only segmented on contrast-enhanced scans by the builtin backend"
                res = np.zeros(self.a.shape, bool)
            else:
                res = aorta_from_contrast(self)
                if not res.any():
                    self.why["aorta"] = "no tubular contrast-filled vessel beside the spine"
            self._c["aorta"] = res
        return self._c["aorta"]
