"""The 18 CT-RATE findings rendered onto a phantom, each with a plausible appearance and location.

Every renderer writes the finding's id (1-based position in CT-RATE order) into ``Canvas.finding`` where it
painted, and returns details (side, lobe, size...) used to write the report.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
import yaml

from ctvl_cli.phantom.anatomy import Anatomy, Segment, coronary_paths, paint_bronchi
from ctvl_cli.phantom.canvas import Canvas, _lut, grid_noise, ids_of, rotation


@functools.lru_cache(maxsize=1)
def finding_table() -> list[dict[str, Any]]:
    """The packaged finding table (``findings.yaml``), in CT-RATE column order."""
    text = resources.files("ctvl_cli.phantom").joinpath("findings.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["findings"]


def finding_names() -> list[str]:
    """The 18 CT-RATE abnormality names, in CT-RATE column order."""
    return [f["name"] for f in finding_table()]


def finding_id(name: str) -> int:
    return finding_names().index(name) + 1


Details = dict[str, Any]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


class _Ctx:
    """Lazily computed helpers shared by the renderers of one case."""

    def __init__(self, cv: Canvas, an: Anatomy, rng: np.random.Generator) -> None:
        self.cv, self.an, self.rng = cv, an, rng
        self.q_cav = np.sqrt((cv.U / an.ac) ** 2 + (cv.V / an.bc) ** 2)  # 2-D, <1 inside the thoracic cavity

    def lung_idx(self, *, extra: tuple[str, ...] = ()) -> np.ndarray:
        return np.flatnonzero(_lut(tuple(ids_of(("lungs", *extra))))[self.cv.organ])

    def points(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i, j, k = np.unravel_index(idx, self.cv.shape)
        return self.cv.U[i, j], self.cv.V[i, j], self.cv.W[k]

    def depth(self, idx: np.ndarray) -> np.ndarray:
        """Approximate distance (mm) from the inner chest wall."""
        i, j, _ = np.unravel_index(idx, self.cv.shape)
        return (1.0 - self.q_cav[i, j]) * min(self.an.ac, self.an.bc)

    def pick(self, idx: np.ndarray, n: int = 1) -> np.ndarray:
        return self.cv.sample_points(idx, self.rng, n)

    def set_flat(self, idx: np.ndarray, value, fid: int, organ: str | None = None) -> None:
        self.cv.hu.reshape(-1)[idx] = value
        self.cv.finding.reshape(-1)[idx] = fid
        if organ is not None:
            self.cv.organ.reshape(-1)[idx] = ids_of([organ])[0]

    def side_lobe(self, p) -> Details:
        side, lobe = self.an.lobe(p)
        return {"side": side, "lobe": lobe}


def _fits_in_lung(cx: _Ctx, c: np.ndarray, r: float) -> bool:
    sl = cx.cv.window(c - r - 1, c + r + 1)
    if sl is None:
        return False
    u, v, w = cx.cv.coords(sl)
    inside = (u - c[0]) ** 2 + (v - c[1]) ** 2 + (w - c[2]) ** 2 <= (r + 1.0) ** 2
    org = cx.cv.organ[sl][inside]
    return org.size > 0 and bool(_lut(tuple(ids_of(["lungs_with_vessels"])))[org].all())


# --------------------------------------------------------------------------- lung parenchyma


def mosaic(cx: _Ctx, fid: int) -> Details:
    idx = cx.lung_idx()
    field = grid_noise(cx.cv, cx.cv.full(), cell_mm=_u(cx.rng, 14, 22), rng=cx.rng).reshape(-1)[idx]
    hu = cx.cv.hu.reshape(-1)
    dense, lucent = idx[field > 0.45], idx[field < -0.45]
    cx.set_flat(dense, hu[dense] + _u(cx.rng, 110, 160), fid)
    cx.set_flat(lucent, np.maximum(hu[lucent] - _u(cx.rng, 60, 85), -950.0), fid)
    return {"side": "bilateral"}


def emphysema(cx: _Ctx, fid: int) -> Details:
    an, cv = cx.an, cx.cv
    idx = cx.lung_idx()
    _, _, w = cx.points(idx)
    w_lo = min(an.dome.values())
    upper = idx[w > w_lo + 0.4 * (an.w_apex - w_lo)]
    paraseptal = cx.rng.random() < 0.3
    if paraseptal:
        upper = upper[cx.depth(upper) < 12.0]
    allow = ids_of(["lungs"])
    for c in cx.pick(upper if upper.size else idx, int(cx.rng.integers(60, 150))):
        r = max(_u(cx.rng, 5.0, 14.0), 0.75 * cv.h)
        cv.ellipsoid(c, (r, r, r), _u(cx.rng, -995, -975), finding=fid, allow=allow)
    return {"side": "bilateral", "type": "paraseptal" if paraseptal else "centrilobular"}


def septal(cx: _Ctx, fid: int) -> Details:
    cv = cx.cv
    idx = cx.lung_idx()
    idx = idx[cx.depth(idx) < _u(cx.rng, 18, 30)]
    _, _, w = cx.points(idx)
    w_mid = 0.5 * (min(cx.an.dome.values()) + cx.an.w_apex)
    idx = idx[w < w_mid + 20]  # basal predominance
    u, v, w = cx.points(idx)
    rot = rotation(yaw=_u(cx.rng, 0, 90), pitch=_u(cx.rng, 0, 90), roll=_u(cx.rng, 0, 90))
    L = _u(cx.rng, 12, 20)
    t = max(1.2, 0.7 * cv.h)
    d = np.full(idx.shape, np.inf, dtype=np.float32)
    # Polygonal lobule walls: three plane families, warped by low-frequency waves so cells are irregular.
    waves = [
        (cx.rng.uniform(2.0, 4.0), cx.rng.uniform(25, 45), cx.rng.uniform(0, 2 * math.pi)) for _ in range(3)
    ]
    pts = (u, v, w)
    for a in range(3):
        amp, lam, ph = waves[a]
        warp = (
            amp
            * np.sin(2 * math.pi * pts[(a + 1) % 3] / lam + ph)
            * np.cos(2 * math.pi * pts[(a + 2) % 3] / lam)
        )
        x = (rot[a, 0] * u + rot[a, 1] * v + rot[a, 2] * w + warp) / L
        d = np.minimum(d, np.abs(x - np.round(x)) * L)
    alpha = np.clip(0.5 - (d - t / 2) / cv.h, 0, 1)
    hu = cv.hu.reshape(-1)
    val = _u(cx.rng, -200, -60)
    new = hu[idx] + alpha * (val - hu[idx])
    sel = alpha >= 0.5
    hu[idx] = new
    cv.finding.reshape(-1)[idx[sel]] = fid
    return {"side": "bilateral"}


def fibrotic(cx: _Ctx, fid: int) -> Details:
    cv, rng = cx.cv, cx.rng
    idx = cx.lung_idx()
    idx = idx[cx.depth(idx) < 20.0]
    _, _, w = cx.points(idx)
    apical = rng.random() < 0.6
    if apical and (w > 20).sum() > 50:
        idx = idx[w > 20]
    pts = cx.pick(idx, int(rng.integers(5, 12)))
    allow = ids_of(["lungs_with_vessels"])
    for p in pts:
        d = rng.standard_normal(3)
        d /= np.linalg.norm(d)
        q = p + d * _u(rng, 15, 40)
        cv.capsule(p, q, max(_u(rng, 2.2, 3.5), 0.6 * cv.h), None, _u(rng, -60, 30), finding=fid, allow=allow)
    sides = {cx.an.lobe(p)[0] for p in pts}
    return {
        "side": "bilateral" if len(sides) == 2 else sides.pop(),
        "zone": "apical" if apical else "peripheral",
    }


def opacity(cx: _Ctx, fid: int) -> Details:
    cv, rng = cx.cv, cx.rng
    idx = cx.lung_idx()
    n = int(rng.integers(1, 6))
    allow = ids_of(["lungs"])
    pts = cx.pick(idx, n)
    for p in pts:
        r = np.array([_u(rng, 16, 38), _u(rng, 16, 38), _u(rng, 16, 38)])
        rot = rotation(yaw=_u(rng, 0, 180), pitch=_u(rng, -30, 30))
        cv.ellipsoid(p, r, _u(rng, -560, -380), rot=rot, finding=fid, allow=allow)
    out = cx.side_lobe(pts[0])
    sides = {cx.an.lobe(p)[0] for p in pts}
    if len(sides) == 2:
        out["side"] = "bilateral"
    out["count"] = n
    return out


def _airways_in_lung(cx: _Ctx, segs: list[Segment], *, min_gen: int) -> list[Segment]:
    """Airway segments of generation >= min_gen whose middle lies inside the lungs."""
    ok = _lut(tuple(ids_of(["lungs_with_vessels", "airway", "airway_wall"])))
    out = []
    for s in segs:
        idx = cx.cv.index_of(0.5 * (s.a + s.b))
        if s.gen >= min_gen and idx is not None and ok[cx.cv.organ[idx]]:
            out.append(s)
    return out


def peribronchial(cx: _Ctx, fid: int) -> Details:
    segs = _airways_in_lung(cx, cx.an.bronchi, min_gen=1)
    paint_bronchi(cx.cv, cx.an, segs, wall=_u(cx.rng, 3.0, 4.2), finding=fid, clear_lumen=True)
    return {"side": "bilateral"}


def bronchiectasis(cx: _Ctx, fid: int) -> Details:
    rng = cx.rng
    inside = _airways_in_lung(cx, cx.an.bronchi, min_gen=1)
    cands = [s for s in inside if s.gen in (2, 3) and s.a[2] < -15] or inside or cx.an.bronchi
    pick = rng.choice(len(cands), size=min(len(cands), int(rng.integers(4, 10))), replace=False)
    segs = []
    for i in pick:
        s = cands[int(i)]
        d = (s.b - s.a) / (np.linalg.norm(s.b - s.a) + 1e-9)
        r = max(s.r0 * _u(rng, 2.5, 3.5), 0.9 * cx.cv.h)
        segs.append(Segment(s.a, s.b + d * _u(rng, 15, 30), r, r, s.gen, s.side))
    paint_bronchi(cx.cv, cx.an, segs, wall=_u(rng, 2.0, 3.0), finding=fid)
    sides = {"right" if s.side < 0 else "left" for s in segs}
    return {"side": "bilateral" if len(sides) == 2 else sides.pop(), "lobe": "lower lobe"}


def consolidation(cx: _Ctx, fid: int) -> Details:
    cv, rng, an = cx.cv, cx.rng, cx.an
    idx = cx.lung_idx()
    u, v, w = cx.points(idx)
    pref = idx[(v > 0) & (w < -20)] if rng.random() < 0.6 else idx  # mostly dependent lower zones
    p = cx.pick(pref if pref.size > 100 else idx, 1)[0]
    r = np.array([_u(rng, 22, 42), _u(rng, 20, 38), _u(rng, 22, 48)])
    allow = ids_of(["lungs", "pulmonary_vessel", "airway_wall"])  # airway lumens stay: air bronchograms
    cv.ellipsoid(p, r, _u(rng, 20, 45), rot=rotation(yaw=_u(rng, 0, 180)), finding=fid, allow=allow)
    del an
    return cx.side_lobe(p)


def atelectasis(cx: _Ctx, fid: int, *, side: int) -> Details:
    cv, rng, an = cx.cv, cx.rng, cx.an
    name = "lung_right" if side < 0 else "lung_left"
    idx = np.flatnonzero(_lut(tuple(ids_of([name, "pulmonary_vessel"])))[cv.organ])
    u, v, w = cx.points(idx)
    idx = idx[side * u > 0]
    u, v, w = cx.points(idx)
    kind = "dependent" if rng.random() < 0.6 else "linear"
    if kind == "dependent":
        sel = idx[
            (cx.depth(idx) < _u(rng, 9, 16)) & (v > 0.3 * an.bc) & (w < an.dome[side] + _u(rng, 35, 60))
        ]
        hu = cv.hu.reshape(-1)
        val = _u(rng, 0, 40)
        cx.set_flat(sel, hu[sel] * 0.1 + 0.9 * val, fid)
        if sel.size:
            return {"side": "right" if side < 0 else "left", "lobe": "lower lobe", "type": kind}
        kind = "linear"
    lower = idx[w < -35] if (w < -35).sum() > 20 else idx
    p = cx.pick(lower, 1)[0]
    t = max(2.5, 0.65 * cv.h)
    r = (_u(rng, 22, 38), _u(rng, 22, 38), t)
    rot = rotation(yaw=_u(rng, 0, 180), pitch=_u(rng, -12, 12))
    cv.ellipsoid(p, r, _u(rng, -60, 20), rot=rot, finding=fid, allow=ids_of(["lungs_with_vessels"]))
    out = cx.side_lobe(p)
    out["type"] = kind
    return out


def pleural_effusion(cx: _Ctx, fid: int) -> Details:
    cv, rng, an = cx.cv, cx.rng, cx.an
    x = rng.random()
    sides = [-1] if x < 0.35 else [1] if x < 0.6 else [-1, 1]
    idx = np.flatnonzero(_lut(tuple(ids_of(["lungs_with_vessels", "airway", "airway_wall"])))[cv.organ])
    u, v, w = cx.points(idx)
    depths = {}
    val = _u(rng, 3, 18)
    for s in sides:
        depth = _u(rng, 12, 35)
        sel = idx[(s * u > 12) & (v > an.bc - depth) & (w < an.w_apex - 30)]
        if sel.size == 0:  # tiny lungs: fall back to the most posterior lung voxels of that side
            cand = idx[s * u > 12]
            sel = cand[cx.points(cand)[1] >= np.quantile(cx.points(cand)[1], 0.9)]
        cx.set_flat(sel, val, fid, organ="pleural_cavity")
        depths["right" if s < 0 else "left"] = round(depth)
    return {
        "side": "bilateral" if len(sides) == 2 else ("right" if sides[0] < 0 else "left"),
        "depth_mm": depths,
    }


def nodule(cx: _Ctx, fid: int) -> Details:
    cv, rng = cx.cv, cx.rng
    idx = cx.lung_idx()
    n = 1 if rng.random() < 0.55 else int(rng.integers(2, 5))
    allow = ids_of(["lungs_with_vessels"])
    sizes, places = [], []
    for _ in range(n):
        d_min = max(8.0, 3.0 * cv.h)
        diam = float(min(d_min + rng.exponential(7.0), 30.0))
        for attempt in range(60):
            c = cx.pick(idx, 1)[0]
            r = 0.5 * diam if attempt < 40 else max(0.5 * d_min, 0.5 * diam * 0.6)
            if _fits_in_lung(cx, c, r):
                jit = r * (1 + 0.12 * rng.standard_normal(3))
                cv.ellipsoid(c, np.maximum(jit, 0.5 * d_min), _u(rng, 10, 55), finding=fid, allow=allow)
                sizes.append(round(2 * r))
                places.append(c)
                break
    if not places:  # no room anywhere: render the smallest nodule in the middle of the largest lung region
        c = cx.pick(idx, 1)[0]
        r = max(2.0, 1.3 * cv.h)
        cv.ellipsoid(c, (r, r, r), _u(rng, 10, 55), finding=fid, allow=allow)
        sizes, places = [round(2 * r)], [c]
    big = int(np.argmax(sizes))
    out = cx.side_lobe(places[big])
    out.update(count=len(sizes), size_mm=sizes[big])
    return out


# --------------------------------------------------------------------------- heart, vessels, mediastinum


def cardiomegaly(cx: _Ctx, fid: int) -> Details:
    heart = np.flatnonzero(cx.cv.organ == ids_of(["heart"])[0])
    cx.cv.finding.reshape(-1)[heart] = fid
    return {"ctr": round(cx.an.ctr_target, 2)}


def pericardial_effusion(cx: _Ctx, fid: int) -> Details:
    an, rng = cx.an, cx.rng
    t = _u(rng, 7, 16)
    c = an.heart_center + np.array([0.0, 0.35 * t, -0.2 * t])  # thicker posteriorly / inferiorly
    allow = ids_of(["pericardial_fat", "lungs_with_vessels", "mediastinal_fat"])
    cx.cv.ellipsoid(c, an.heart_radii, _u(rng, 2, 18), rot=an.heart_rot, margin=t, organ="pericardial_space",
                    finding=fid, allow=allow)  # fmt: skip
    return {"thickness_mm": round(t)}


def _calc_spot(cx: _Ctx, c, fid: int, r: float, deny, along=None) -> None:
    """A calcified plaque: 1-3 overlapping dense spots, strung along ``along`` (the vessel direction)."""
    r = max(r, 0.6 * cx.cv.h)
    hu = _u(cx.rng, 600, 900)
    n = 1 if along is None else int(cx.rng.integers(1, 4))
    for k in range(n):
        cx.cv.ellipsoid(c + (0 if along is None else k * r * along), (r, r, r), hu, finding=fid, deny=deny)


def coronary_calcification(cx: _Ctx, fid: int) -> Details:
    rng = cx.rng
    paths = coronary_paths(cx.an)
    deny = ids_of(["bone", "airway", "device"])
    n = int(rng.integers(4, 12))
    names = ["RCA", "LAD", "LCx"]
    hit = set()
    for _ in range(n):
        k = int(rng.integers(0, 3))
        path = paths[k]
        t = _u(rng, 0.0, 0.6) * (len(path) - 1)
        i = int(t)
        step = path[min(i + 1, len(path) - 1)] - path[i]
        c = path[i] + (t - i) * step
        _calc_spot(cx, c, fid, _u(rng, 3.0, 4.5), deny, step / (np.linalg.norm(step) + 1e-9))
        hit.add(names[k])
    return {"vessels": sorted(hit)}


def arterial_calcification(cx: _Ctx, fid: int) -> Details:
    rng, an = cx.rng, cx.an
    deny = ids_of(["bone", "airway", "airway_wall", "device", "heart"])
    ra, rd = an.aorta_r
    pts = an.aorta
    for _ in range(int(rng.integers(6, 16))):
        i = int(rng.integers(2, len(pts) - 1))
        t = _u(rng, 0, 1)
        axis = pts[i] + t * (pts[i + 1] - pts[i])
        d = pts[i + 1] - pts[i]
        perp = np.cross(d, rng.standard_normal(3))
        perp /= np.linalg.norm(perp) + 1e-9
        r_here = ra + (rd - ra) * (i + t) / (len(pts) - 1)
        _calc_spot(cx, axis + perp * r_here, fid, _u(rng, 3.0, 5.0), deny, d / (np.linalg.norm(d) + 1e-9))
    return {"segment": "arch and descending aorta"}


_STATIONS = {
    "right paratracheal": (-16, -2, 28.0),
    "subcarinal": (2, 16, -24.0),
    "prevascular": (8, -34, 32.0),
    "aortopulmonary window": (22, -10, 12.0),
    "right hilar": (-52, 6, -24.0),
    "left hilar": (54, 12, -36.0),
}


def lymphadenopathy(cx: _Ctx, fid: int) -> Details:
    rng, an = cx.rng, cx.an
    tu, tv, _ = an.trachea
    names = list(_STATIONS)
    pick = rng.choice(len(names), size=int(rng.integers(2, 6)), replace=False)
    allow = ids_of(["mediastinal_fat", "lungs_with_vessels", "pericardial_fat", "lymph_node"])
    sizes = []
    for i in pick:
        du, dv, w = _STATIONS[names[int(i)]]
        short = _u(rng, 14, 28)
        c = np.array([tu + du, tv + dv, w])
        cx.cv.ellipsoid(c, (short / 2, short / 2, short * _u(rng, 0.6, 0.8)), _u(rng, 30, 50), organ="lymph_node",
                        finding=fid, allow=allow)  # fmt: skip
        sizes.append(round(short))
    return {"stations": [names[int(i)] for i in pick], "size_mm": max(sizes)}


def hiatal_hernia(cx: _Ctx, fid: int) -> Details:
    rng, an, cv = cx.rng, cx.an, cx.cv
    tu = an.trachea[0]
    r = np.array([_u(rng, 18, 30), _u(rng, 14, 20), _u(rng, 20, 34)])
    c = np.array([tu + 10, an.v_spine - an.r_vert - r[1] - 2, 0.5 * (an.dome[-1] + an.dome[1]) + 0.4 * r[2]])
    deny = ids_of(["vertebra", "aorta", "spinal_canal", "rib"])
    cv.ellipsoid(c, r, an.hu["muscle"], organ="stomach", finding=fid, deny=deny)
    inner = ids_of(["stomach"])
    cv.ellipsoid(c, r - 3, _u(rng, 5, 30), organ="stomach", finding=fid, allow=inner)
    sl = cv.window(c - r, c + r)
    if sl is not None:  # air cap in the non-dependent (anterior) part
        u, v, w = cv.coords(sl)
        q = np.sqrt(
            ((u - c[0]) / (r[0] - 3)) ** 2 + ((v - c[1]) / (r[1] - 3)) ** 2 + ((w - c[2]) / (r[2] - 3)) ** 2
        )
        sd = np.maximum((q - 1) * (r[1] - 3), v - (c[1] - 0.3 * r[1]))
        cv.paint(sl, cv.alpha(sd), an.hu["air"], organ="stomach", finding=fid, allow=inner)
    return {"size_mm": round(2 * r[2])}


def medical_material(cx: _Ctx, fid: int) -> Details:
    rng, an, cv = cx.rng, cx.an, cx.cv
    kinds = ["port catheter", "pacemaker", "sternotomy wires", "central venous catheter"]
    chosen = [kinds[int(i)] for i in rng.choice(4, size=1 if rng.random() < 0.75 else 2, replace=False)]
    tu, tv, _ = an.trachea
    hc, hr = an.heart_center, an.heart_radii
    metal, wire_r = an.hu["metal"], max(1.6, 0.6 * cv.h)
    svc = [np.array([tu - 26, tv - 20, 45.0]), np.array([tu - 26, tv - 22, hc[2] + 0.6 * hr[2]])]
    ra = hc + np.array([-0.55 * hr[0], -0.1 * hr[1], 0.2 * hr[2]])

    def chest_wall_point(side: int, w: float) -> np.ndarray:
        u = side * 0.45 * an.ac
        v_cav = -an.bc * math.sqrt(max(1 - (u / an.ac) ** 2, 0.05))
        return np.array([u, v_cav - an.muscle - 0.5 * an.fat - 6.0, w])

    for kind in chosen:
        if kind in ("port catheter", "pacemaker"):
            side = -1 if kind == "port catheter" else 1
            g = chest_wall_point(side, an.w_apex - 35)
            radii = (15, 7, 15) if kind == "port catheter" else (24, 8, 28)
            cv.ellipsoid(g, radii, metal, organ="device", finding=fid)
            path = [g, np.array([side * 35.0, tv - 30, an.w_apex - 45]), *svc, ra]
            cv.polyline(
                path,
                wire_r,
                an.hu["catheter"] if kind == "port catheter" else metal,
                organ="device",
                finding=fid,
            )
        elif kind == "central venous catheter":
            path = [np.array([-45.0, tv - 10, float(cv.W[-1]) + 5]), np.array([-30.0, tv - 18, 60.0]), *svc]
            cv.polyline(path, wire_r, an.hu["catheter"], organ="device", finding=fid)
        else:
            top, bottom = an.w_apex - 25, hc[2]
            v0 = -(an.bc + 6.0)
            for w in np.linspace(bottom, top, int(rng.integers(4, 7))):
                ring = [
                    (-17, v0 - 8, w),
                    (17, v0 - 8, w),
                    (17, v0 + 7, w),
                    (-17, v0 + 7, w),
                    (-17, v0 - 8, w),
                ]
                cv.polyline(ring, wire_r, metal, organ="device", finding=fid)
    return {"devices": chosen}


RENDER_ORDER: list[tuple[str, Callable[..., Details]]] = [
    ("Mosaic attenuation pattern", mosaic),
    ("Emphysema", emphysema),
    ("Interlobular septal thickening", septal),
    ("Pulmonary fibrotic sequela", fibrotic),
    ("Lung opacity", opacity),
    ("Peribronchial thickening", peribronchial),
    ("Bronchiectasis", bronchiectasis),
    ("Consolidation", consolidation),
    ("Atelectasis", atelectasis),
    ("Pleural effusion", pleural_effusion),
    ("Lung nodule", nodule),
    ("Cardiomegaly", cardiomegaly),
    ("Pericardial effusion", pericardial_effusion),
    ("Coronary artery wall calcification", coronary_calcification),
    ("Arterial wall calcification", arterial_calcification),
    ("Lymphadenopathy", lymphadenopathy),
    ("Hiatal hernia", hiatal_hernia),
    ("Medical material", medical_material),
]


def render_findings(
    cv: Canvas, an: Anatomy, present: set[str], rng: np.random.Generator, *, atelectasis_side: int
) -> dict[str, Details]:
    """Render every finding in ``present``; returns details per rendered finding."""
    cx = _Ctx(cv, an, rng)
    out: dict[str, Details] = {}
    for name, fn in RENDER_ORDER:
        if name not in present:
            continue
        fid = finding_id(name)
        kw = {"side": atelectasis_side} if name == "Atelectasis" else {}
        out[name] = fn(cx, fid, **kw)
    return out
