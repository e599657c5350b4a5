"""Normal chest anatomy of the phantom: random patient geometry and its painting onto a :class:`Canvas`.

Shapes are analytic (ellipses, superellipses, tubes, boxes) evaluated directly on the scanner grid, so the same
model renders at any resolution. All distances are in mm in patient coordinates (see ``canvas.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ctvl_cli.phantom.canvas import Canvas, anatomy_table, grid_noise, ids_of, rotation


@dataclass
class Segment:
    """One branch of an airway or vessel tree."""

    a: np.ndarray
    b: np.ndarray
    r0: float
    r1: float
    gen: int
    side: int  # -1 right, +1 left


@dataclass
class Anatomy:
    """Sampled patient geometry (mm) and per-case tissue HU values."""

    a: float  # body half-width (left-right)
    b: float  # body half-depth (anterior-posterior)
    fat: float
    muscle: float
    ac: float  # thoracic cavity half-width
    bc: float  # thoracic cavity half-depth
    w_apex: float
    dome: dict[int, float]  # hemidiaphragm dome height per side (-1 right, +1 left)
    v_spine: float
    r_vert: float
    trachea: tuple[float, float, float]  # u, v, radius
    heart_center: np.ndarray
    heart_radii: np.ndarray
    heart_rot: np.ndarray
    ctr_target: float
    contrast: bool
    hu: dict[str, float]
    aorta: list[np.ndarray] = field(default_factory=list)
    aorta_r: tuple[float, float] = (14.0, 11.0)
    hila: dict[int, np.ndarray] = field(default_factory=dict)
    bronchi: list[Segment] = field(default_factory=list)
    arteries: list[Segment] = field(default_factory=list)
    veins: list[Segment] = field(default_factory=list)

    def diaphragm(self, u, v, side: int):
        """Height of the hemidiaphragm surface at (u, v) (array-friendly)."""
        ac, bc = self.ac, self.bc
        return (
            self.dome[side]
            - 35.0 * ((np.abs(u) - 0.45 * ac) / (0.55 * ac)) ** 2
            - 55.0 * (np.maximum(v, 0.0) / bc) ** 2
            - 15.0 * (np.maximum(-v, 0.0) / bc) ** 2
        )

    def lung_top(self, u, v):
        return self.w_apex - 55.0 * (
            ((np.abs(u) - 0.5 * self.ac) / (0.55 * self.ac)) ** 2 + (v / self.bc) ** 2
        )

    def lobe(self, p) -> tuple[str, str]:
        """(side, lobe) names of a patient point, e.g. ("right", "middle lobe")."""
        u, v, w = float(p[0]), float(p[1]), float(p[2])
        if u < 0:
            if w > -5.0:
                return "right", "upper lobe"
            return (
                ("right", "middle lobe")
                if v < -0.2 * self.bc and w > self.dome[-1] + 10
                else ("right", "lower lobe")
            )
        return (
            ("left", "upper lobe")
            if w > -25.0 or (v < -0.35 * self.bc and w > -45.0)
            else ("left", "lower lobe")
        )


def _draw(rng: np.random.Generator, lo_hi) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def sample_anatomy(rng: np.random.Generator, *, cardiomegaly: bool = False, volume_loss: int = 0) -> Anatomy:
    """Draw one patient. ``volume_loss`` (-1/+1) raises that hemidiaphragm (atelectasis)."""
    a = _draw(rng, (135, 180))
    b = a * _draw(rng, (0.62, 0.74))
    fat = _draw(rng, (6, 28))
    muscle = _draw(rng, (8, 14))
    ac, bc = a - fat - muscle - 6, b - fat - muscle - 6
    w_apex = _draw(rng, (100, 130))
    dome_r = -_draw(rng, (115, 150))
    dome = {-1: dome_r, 1: dome_r - _draw(rng, (8, 22))}
    if volume_loss:
        dome[volume_loss] += _draw(rng, (10, 18))
    v_spine = b - 0.5 * fat - _draw(rng, (55, 63))
    r_vert = _draw(rng, (15, 19))
    tr = (_draw(rng, (-3, 3)), v_spine - r_vert - _draw(rng, (28, 34)), _draw(rng, (8, 11)))
    # Heart: width set by a target cardiothoracic ratio (heart width / inner thoracic width).
    ctr = _draw(rng, (0.58, 0.68)) if cardiomegaly else _draw(rng, (0.36, 0.46))
    yaw = _draw(rng, (28, 42))
    k = _draw(rng, (0.72, 0.85))
    half = ctr * ac  # half heart width
    c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    rx = half / math.sqrt(c * c + (k * s) ** 2)
    ry = rx * k * (1.12 if cardiomegaly else 1.0)
    rz = rx * _draw(rng, (0.78, 0.9))
    depth = math.sqrt((rx * s) ** 2 + (ry * c) ** 2)
    dome_mid = 0.5 * (dome[-1] + dome[1])
    center = np.array(
        [_draw(rng, (8, 20)), -bc + depth + _draw(rng, (3, 8)), dome_mid + rz * _draw(rng, (0.45, 0.6))]
    )
    rot = rotation(yaw=yaw, pitch=_draw(rng, (-20, -8)))
    contrast = bool(rng.random() < 0.45)
    hu = {name: _draw(rng, rng_) for name, rng_ in anatomy_table()["hu"].items()}
    anat = Anatomy(
        a=a, b=b, fat=fat, muscle=muscle, ac=ac, bc=bc, w_apex=w_apex, dome=dome, v_spine=v_spine,
        r_vert=r_vert, trachea=tr, heart_center=center, heart_radii=np.array([rx, ry, rz]), heart_rot=rot,
        ctr_target=ctr, contrast=contrast, hu=hu,
    )  # fmt: skip
    _great_vessels(anat, rng)
    _trees(anat, rng)
    return anat


def _great_vessels(an: Anatomy, rng: np.random.Generator) -> None:
    hc, (rx, ry, rz) = an.heart_center, an.heart_radii
    tu, tv, _ = an.trachea
    vs, rv = an.v_spine, an.r_vert
    w_low = min(an.dome.values()) - 60
    an.aorta_r = (_draw(rng, (13, 17)), _draw(rng, (10, 13)))
    an.aorta = [
        np.array(p, dtype=float)
        for p in (
            (hc[0] - 0.3 * rx, hc[1] + 0.1 * ry, hc[2] + 0.55 * rz),
            (tu - 16, tv - 26, 20.0),
            (tu - 6, tv - 20, 38.0),
            (tu + 12, tv - 4, 46.0),
            (tu + 22, vs - rv - 4, 34.0),
            (tu + 22, vs - 0.7 * rv, 0.0),
            (tu + 18, vs - 0.8 * rv, w_low),
        )
    ]
    an.hila = {
        -1: np.array([tu - 42, tv + 6, -22.0]),
        1: np.array([tu + 46, tv + 10, -36.0]),
    }


def _branch(rng, p, d, length, r, gen, max_gen, side, out: list[Segment], spread=(22, 38)) -> None:
    d = d / np.linalg.norm(d)
    q = p + d * length
    r1 = r * 0.8
    out.append(Segment(p.copy(), q, r, r1, gen, side))
    if gen >= max_gen:
        return
    perp = np.cross(d, rng.standard_normal(3))
    perp /= np.linalg.norm(perp) + 1e-9
    ang = math.radians(_draw(rng, spread))
    for sgn in (1, -1):
        nd = math.cos(ang) * d + sgn * math.sin(ang) * perp
        _branch(rng, q, nd, length * _draw(rng, (0.72, 0.86)), r1 * 0.9, gen + 1, max_gen, side, out, spread)


def _trees(an: Anatomy, rng: np.random.Generator) -> None:
    for side in (-1, 1):
        h = an.hila[side]
        lobar = [(0.45, -0.15, 1.0), (0.7, -0.75, -0.25), (0.35, 0.65, -1.0), (0.7, 0.15, -0.9)]
        for du, dv, dw in lobar:
            d = np.array([side * du, dv, dw]) + 0.15 * rng.standard_normal(3)
            br: list[Segment] = []
            _branch(rng, h, d, _draw(rng, (34, 42)), _draw(rng, (4.0, 5.0)), 0, 3, side, br)
            an.bronchi += br
            # Pulmonary arteries run beside the bronchi (same tree, shifted), one generation further.
            shift = np.cross(d / np.linalg.norm(d), [0.0, 0.0, 1.0])
            shift = shift / (np.linalg.norm(shift) + 1e-9)
            for sg in br:
                off = shift * (sg.r0 * 1.9 + 1.0)
                an.arteries.append(Segment(sg.a + off, sg.b + off, sg.r0 * 0.95, sg.r1 * 0.95, sg.gen, side))
                if sg.gen == 3:
                    _branch(rng, sg.b + off, sg.b - sg.a, 18.0, sg.r1 * 0.9, 4, 5, side, an.arteries)
        vein_root = h + np.array([side * -4.0, 22.0, -28.0])
        for du, dv, dw in [(0.4, -0.3, 0.9), (0.9, 0.1, 0.1), (0.5, 0.6, -0.7), (0.6, -0.6, -0.4)]:
            d = np.array([side * du, dv, dw]) + 0.2 * rng.standard_normal(3)
            _branch(rng, vein_root, d, _draw(rng, (34, 42)), _draw(rng, (4.0, 5.0)), 0, 5, side, an.veins)


# --------------------------------------------------------------------------- painting


def _box_sd(u, v, w, c, half):
    return np.maximum(
        np.maximum(np.abs(u - c[0]) - half[0], np.abs(v - c[1]) - half[1]), np.abs(w - c[2]) - half[2]
    )


def _superellipse_q(u, v, a, b, p=2.4):
    return (np.abs(u / a) ** p + np.abs(v / b) ** p) ** (1.0 / p)


def paint_anatomy(cv: Canvas, an: Anatomy, rng: np.random.Generator) -> None:
    """Paint the normal anatomy of ``an`` onto ``cv`` (findings come afterwards)."""
    hu = an.hu
    full = cv.full()
    u, v, w = cv.coords(full)
    # Patient table below the back (scanner coordinates: a plate at constant y).
    y_table = cv.offset[1] + an.b * math.cos(cv.theta) + abs(an.a * math.sin(cv.theta)) + _draw(rng, (0, 3))
    j = (cv.y >= y_table) & (cv.y < y_table + 7)
    if j.any():
        cv.hu[:, j, :] = hu["table"]
        cv.organ[:, j, :] = ids_of(["table"])[0]
    # Body: subcutaneous fat, muscle layer, thoracic cavity.
    wc = 0.5 * (float(cv.W[0]) + float(cv.W[-1]))
    f = 1.0 - 0.05 * ((w - wc) / 160.0) ** 2  # superellipse norms are 1-homogeneous: q(u/f, v/f) = q(u, v)/f
    q = _superellipse_q(u, v, an.a, an.b) / f
    cv.paint(full, cv.alpha((q - 1.0) * an.b), hu["fat"], organ="body_fat")
    q = _superellipse_q(u, v, an.a - an.fat, an.b - an.fat) / f
    cv.paint(full, cv.alpha((q - 1.0) * (an.b - an.fat)), hu["muscle"], organ="muscle")
    q_cav = np.sqrt((u / an.ac) ** 2 + (v / an.bc) ** 2)
    sd_cav = (q_cav - 1.0) * an.bc
    cv.paint(full, cv.alpha(sd_cav), hu["fat"], organ="mediastinal_fat")
    # Paraspinal muscles behind the spine.
    vs, rv = an.v_spine, an.r_vert
    sd = (np.sqrt((u / (rv + 32.0)) ** 2 + ((v - vs - rv - 22.0) / 42.0) ** 2) - 1.0) * 32.0
    cv.paint(full, cv.alpha(sd), hu["muscle"], organ="muscle", allow=ids_of(["mediastinal_fat"]))
    _paint_abdomen(cv, an, u, v, w, sd_cav)
    _paint_lungs(cv, an, u, v, w, sd_cav, rng)
    _paint_mediastinum(cv, an)
    _paint_trees(cv, an)
    _paint_spine(cv, an, rng)
    _paint_ribs(cv, an, rng)
    # Small normal lymph nodes in mediastinal fat.
    tu, tv, _ = an.trachea
    for p in ((tu - 16, tv - 2, 25.0), (tu + 2, tv + 16, -22.0), (tu + 16, tv - 18, 28.0)):
        if rng.random() < 0.6:
            r = _draw(rng, (2.5, 4.0))
            cv.ellipsoid(
                p, (r, r * 0.8, r), hu["soft_tissue"], organ="lymph_node", allow=ids_of(["mediastinal_fat"])
            )


def _paint_abdomen(cv: Canvas, an: Anatomy, u, v, w, sd_cav) -> None:
    hu = an.hu
    d = np.where(u < 0, an.diaphragm(u, v, -1), an.diaphragm(u, v, 1))
    below = np.maximum(sd_cav, (w - d))  # inside cavity and under the diaphragm
    liver = hu["liver_contrast"] if an.contrast else hu["liver"]
    cv.paint(cv.full(), cv.alpha(np.maximum(below, u - 12.0)), liver, organ="liver")
    cv.paint(cv.full(), cv.alpha(np.maximum(below, 12.0 - u)), hu["soft_tissue"], organ="abdomen")
    dl = an.dome[1]
    allow = ids_of(["abdomen", "liver"])
    spleen = hu["spleen_contrast"] if an.contrast else hu["spleen"]
    cv.ellipsoid((0.55 * an.ac, 0.55 * an.bc, dl - 45), (22, 38, 45), spleen, organ="spleen", allow=allow)
    sc = np.array([0.4 * an.ac, -0.15 * an.bc, dl - 40])
    cv.ellipsoid(sc, (32, 28, 36), hu["muscle"], organ="stomach", allow=allow)
    cv.ellipsoid(sc, (28, 24, 32), hu["stomach_fluid"], organ="stomach", allow=ids_of(["stomach"]))
    sl = cv.window(sc - 40, sc + 40)
    if sl is not None:  # air in the non-dependent (anterior) part of the stomach
        uu, vv, ww = cv.coords(sl)
        q = np.sqrt(((uu - sc[0]) / 27) ** 2 + ((vv - sc[1]) / 23) ** 2 + ((ww - sc[2]) / 31) ** 2)
        sd = np.maximum((q - 1) * 23, vv - (sc[1] - 10))
        cv.paint(sl, cv.alpha(sd), hu["air"], organ="stomach", allow=ids_of(["stomach"]))


def _paint_lungs(cv: Canvas, an: Anatomy, u, v, w, sd_cav, rng) -> None:
    vs, rv = an.v_spine, an.r_vert
    sd_spine = np.maximum(np.abs(u) - (rv + 12.0), (vs - rv - 14.0) - v)  # posterior mediastinum block
    sd_top = w - an.lung_top(u, v)
    texture = grid_noise(cv, cv.full(), cell_mm=12.0, rng=rng)
    lung_val = an.hu["lung"] + 30.0 * (v / an.bc) + 10.0 * texture
    for side, name in ((-1, "lung_right"), (1, "lung_left")):
        sd_d = an.diaphragm(u, v, side) - w
        sd_mid = 10.0 - side * u
        sd = np.maximum(np.maximum(sd_cav, sd_top), np.maximum(sd_d, sd_mid))
        sd = np.maximum(sd, -sd_spine)
        cv.paint(cv.full(), cv.alpha(sd), lung_val, organ=name, allow=ids_of(["mediastinal_fat"]))


def _paint_mediastinum(cv: Canvas, an: Anatomy) -> None:
    hu, lungs = an.hu, ids_of(["lungs"])
    soft = ids_of(["lungs", "mediastinal_fat", "liver", "abdomen", "stomach"])
    blood_a = hu["blood_contrast_arterial"] if an.contrast else hu["blood"]
    blood_v = hu["blood_contrast_venous"] if an.contrast else hu["blood"]
    hc, hr, rot = an.heart_center, an.heart_radii, an.heart_rot
    # Heart: epicardial/pericardial fat, myocardium, blood pool.
    cv.ellipsoid(hc, hr, hu["fat"], rot=rot, margin=4.0, organ="pericardial_fat", allow=soft)
    myo = hu["myocardium_contrast"] if an.contrast else hu["soft_tissue"]
    cv.ellipsoid(hc, hr, myo, rot=rot, organ="heart", allow=ids_of(["pericardial_fat"]))
    cv.ellipsoid(hc, hr - 9.0, 0.5 * (blood_a + blood_v), rot=rot, organ="heart", allow=ids_of(["heart"]))
    # Coronary arteries on the heart surface.
    for path in coronary_paths(an):
        cv.polyline(path, 1.8, blood_a, organ="coronary_artery", allow=ids_of(["pericardial_fat"]))
    # Trachea (above the carina) with fat margin, wall and lumen; main bronchi.
    tu, tv, tr = an.trachea
    top = float(cv.W[-1]) + 10
    med = ids_of(["lungs", "mediastinal_fat"])
    cv.capsule((tu, tv, 0.0), (tu, tv, top), tr + 4.0, None, hu["fat"], organ="mediastinal_fat", allow=lungs)
    cv.capsule((tu, tv, 0.0), (tu, tv, top), tr, None, hu["cartilage"], organ="airway_wall", allow=med)
    for side, rb in ((-1, 6.5), (1, 5.5)):
        cv.capsule(
            (tu, tv, 0.0), an.hila[side], rb + 1.5, None, hu["soft_tissue"], organ="airway_wall", allow=med
        )
    air_ok = ids_of(["airway_wall"])
    cv.capsule((tu, tv, 0.0), (tu, tv, top), tr - 2.0, None, hu["air"], organ="airway", allow=air_ok)
    for side, rb in ((-1, 6.5), (1, 5.5)):
        cv.capsule((tu, tv, 0.0), an.hila[side], rb, None, hu["air"], organ="airway", allow=air_ok)
    # Esophagus.
    vs, rv = an.v_spine, an.r_vert
    w_low = min(an.dome.values()) - 10
    pts = [(tu + 4, vs - rv - 9, top), (tu + 6, vs - rv - 9, 0.0), (tu + 14, vs - rv - 13, w_low)]
    cv.polyline(pts, 8.0, hu["muscle"], organ="esophagus", allow=med)
    cv.polyline(pts, 2.0, hu["air"], organ="esophagus", allow=ids_of(["esophagus"]))
    # Aorta, pulmonary trunk and arteries, superior vena cava (with a thin fat margin inside the lungs).
    ra, rd = an.aorta_r
    n = len(an.aorta)
    for i, (p, q) in enumerate(zip(an.aorta[:-1], an.aorta[1:])):
        r0, r1 = ra + (rd - ra) * i / (n - 1), ra + (rd - ra) * (i + 1) / (n - 1)
        cv.capsule(p, q, r0 + 2.5, r1 + 2.5, hu["fat"], organ="mediastinal_fat", allow=lungs)
        cv.capsule(p, q, r0, r1, blood_a, organ="aorta", deny=ids_of(["airway", "airway_wall", "vertebra"]))
    rpa = 12.0
    trunk0 = hc + np.array([0.15 * hr[0], -0.55 * hr[1], 0.6 * hr[2]])
    bif = np.array([tu + 8, tv - 14, -6.0])
    for p, q, r in ((trunk0, bif, rpa), (bif, an.hila[-1], 9.0), (bif, an.hila[1], 9.0)):
        cv.capsule(p, q, r + 2.0, r + 2.0, hu["fat"], organ="mediastinal_fat", allow=lungs)
        cv.capsule(
            p, q, r, r, blood_v, organ="pulmonary_artery", deny=ids_of(["airway", "airway_wall", "aorta"])
        )
    svc = [(tu - 26, tv - 20, top), (tu - 26, tv - 22, hc[2] + 0.6 * hr[2])]
    cv.polyline(svc, 9.0, blood_v, organ="superior_vena_cava", allow=ids_of(["mediastinal_fat", "lungs"]))


def coronary_paths(an: Anatomy) -> list[list[np.ndarray]]:
    """Three coronary artery paths (RCA, LAD, LCx) just outside the heart surface."""
    hc, hr, rot = an.heart_center, an.heart_radii, an.heart_rot
    paths = []
    for theta0, theta1, z0, z1 in ((200, 250, 0.55, -0.5), (120, 70, 0.65, -0.7), (140, 20, 0.55, 0.05)):
        pts = []
        for t in np.linspace(0, 1, 7):
            th = math.radians(theta0 + (theta1 - theta0) * t)
            z = z0 + (z1 - z0) * t
            ring = math.sqrt(max(1.0 - z * z, 0.05))
            local = np.array(
                [math.cos(th) * ring * (hr[0] + 2.5), math.sin(th) * ring * (hr[1] + 2.5), z * hr[2]]
            )
            pts.append(hc + rot.T @ local)
        paths.append(pts)
    return paths


def _paint_trees(cv: Canvas, an: Anatomy) -> None:
    hu = an.hu
    lungs = ids_of(["lungs"])
    vessel_ok = ids_of(["lungs", "pulmonary_vessel"])
    blood_v = hu["blood_contrast_venous"] if an.contrast else hu["blood"]
    min_r = 0.3 * cv.h
    for sg in an.veins:
        if sg.r0 < min_r:
            continue
        cv.capsule(sg.a, sg.b, sg.r0 * 0.9, sg.r1 * 0.9, blood_v, organ="pulmonary_vessel", allow=lungs)
    for sg in an.arteries:
        if sg.r0 < min_r:
            continue
        cv.capsule(sg.a, sg.b, sg.r0, sg.r1, blood_v, organ="pulmonary_vessel", allow=vessel_ok)
    paint_bronchi(cv, an, an.bronchi, wall=None)


def paint_bronchi(
    cv: Canvas,
    an: Anatomy,
    segs: list[Segment],
    *,
    wall: float | None,
    finding: int | None = None,
    clear_lumen: bool = False,
) -> None:
    """Paint airway segments (wall, then lumen) inside the lungs.

    ``wall`` overrides the wall thickness; ``finding`` labels the painted voxels (only the wall when
    ``clear_lumen``).
    """
    hu = an.hu
    wall_ok = ids_of(["lungs", "airway_wall", "pulmonary_vessel"] if finding else ["lungs"])
    for sg in segs:
        t = wall if wall is not None else max(0.8, 0.18 * sg.r0)
        cv.capsule(sg.a, sg.b, sg.r0 + t, sg.r1 + t, hu["soft_tissue"], organ="airway_wall", finding=finding,
                   allow=wall_ok)  # fmt: skip
    lumen_finding = 0 if (clear_lumen and finding) else finding
    for sg in segs:
        cv.capsule(sg.a, sg.b, sg.r0, sg.r1, hu["air"], organ="airway", finding=lumen_finding,
                   allow=ids_of(["airway_wall", "airway"]))  # fmt: skip


def _paint_spine(cv: Canvas, an: Anatomy, rng) -> None:
    hu = an.hu
    vs, rv = an.v_spine, an.r_vert
    z_lo, z_hi = float(cv.W[0]) - 30, float(cv.W[-1]) + 30
    soft = ids_of(["mediastinal_fat", "muscle", "lungs", "abdomen", "liver", "body_fat"])
    canal_v = vs + rv + 9.0
    cv.capsule((0, canal_v, z_lo), (0, canal_v, z_hi), 15.0, None, 0.5 * (hu["bone_cortical"] + hu["bone_cancellous"]),
               organ="vertebra", allow=soft)  # fmt: skip
    cv.capsule((0, canal_v, z_lo), (0, canal_v, z_hi), 8.5, None, hu["csf"], organ="spinal_canal",
               allow=ids_of(["vertebra"]))  # fmt: skip
    height = _draw(rng, (22, 26))
    z = z_lo + _draw(rng, (0, height))
    while z < z_hi:
        c = np.array([0.0, vs, z + height / 2])
        sl = cv.window(c - (rv + 3), c + (rv + 3))
        if sl is not None:
            u, v, w = cv.coords(sl)
            rr = np.sqrt(u**2 + (v - vs) ** 2)
            sd = np.maximum(rr - rv, np.abs(w - c[2]) - (height / 2 - 2.5))
            cv.paint(sl, cv.alpha(sd), hu["bone_cortical"], organ="vertebra", allow=soft)
            cv.paint(
                sl, cv.alpha(sd + 2.0), hu["bone_cancellous"], organ="vertebra", allow=ids_of(["vertebra"])
            )
            sd_disc = np.maximum(rr - rv, np.abs(w - z) - 2.5)
            cv.paint(sl, cv.alpha(sd_disc), hu["disc"], organ="vertebra", allow=soft + ids_of(["vertebra"]))
        bone = 0.5 * (hu["bone_cortical"] + hu["bone_cancellous"])
        wm = z + height / 2
        cv.capsule(
            (0, canal_v + 12, wm), (0, canal_v + 38, wm - 14), 4.0, 3.0, bone, organ="vertebra", allow=soft
        )
        for s in (-1, 1):
            cv.capsule(
                (s * 10, canal_v, wm), (s * 32, canal_v + 6, wm), 5.0, 4.0, bone, organ="vertebra", allow=soft
            )
        z += height


def _paint_ribs(cv: Canvas, an: Anatomy, rng) -> None:
    hu = an.hu
    soft = ids_of(["mediastinal_fat", "muscle", "lungs", "body_fat", "abdomen", "liver", "pulmonary_vessel"])
    bone = 0.55 * hu["bone_cortical"] + 0.45 * hu["bone_cancellous"]
    vs, rv = an.v_spine, an.r_vert
    ar, br = an.ac + 5.0, an.bc + 5.0
    gap = _draw(rng, (21, 25))
    w_lo = float(cv.W[0]) - 60
    for k in range(12):
        wk = an.w_apex + 12 - k * gap
        if wk < w_lo:
            break
        drop = _draw(rng, (45, 75)) + 3.0 * k
        r = _draw(rng, (3.5, 4.8))
        for s in (-1, 1):
            pts = [np.array([s * (rv + 26.0), vs + rv + 10.0, wk])]
            reach = 170.0 if k < 7 else 150.0 - 8 * (k - 7)
            for phi in np.linspace(25, reach, 9):
                t = (phi - 25) / 145
                ph = math.radians(phi)
                pts.append(np.array([s * ar * math.sin(ph), br * math.cos(ph), wk - drop * t**1.2]))
            n_bone = 7 if reach > 160 else 9
            for i in range(len(pts) - 1):
                is_cart = i >= n_bone
                cv.capsule(pts[i], pts[i + 1], r, r, hu["cartilage"] if is_cart else bone,
                           organ="costal_cartilage" if is_cart else "rib", allow=soft)  # fmt: skip
    # Sternum.
    hc, hr = an.heart_center, an.heart_radii
    c = np.array([0.0, -(an.bc + 6.0), 0.5 * (hc[2] - hr[2] - 10 + an.w_apex - 15)])
    half = np.array([14.0, 5.5, 0.5 * (an.w_apex - 15 - (hc[2] - hr[2] - 10))])
    sl = cv.window(c - half - 3, c + half + 3)
    if sl is not None:
        u, v, w = cv.coords(sl)
        sd = _box_sd(u, v, w, c, half)
        cv.paint(sl, cv.alpha(sd), hu["bone_cortical"], organ="sternum", allow=soft)
        cv.paint(sl, cv.alpha(sd + 2.0), hu["bone_cancellous"], organ="sternum", allow=ids_of(["sternum"]))
