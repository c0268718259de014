"""Building shadows: the ground-shadow target, and heights measured from shadow length.

Geometry (flat roofs, vertical walls, flat ground): a roof point ``h`` metres up
casts its shadow ``h / tan(elevation)`` metres towards ``azimuth + 180``. The
ground shadow of a building is therefore its footprint swept along that vector,
minus every footprint (shadow falling on a roof is not ground shadow).

Height from a shadow map: from every footprint pixel on the edge facing away
from the sun, walk towards ``azimuth + 180`` and measure how far the shadow
runs on the ground. A ray that meets another building, leaves the image or
leaves the valid area before its shadow ends is *censored* (its true length is
unknown) and not used. The height is ``median(length) * tan(elevation)`` over
the uncensored rays, and the spread of the ray estimates gives its sigma.
A roof wholly in a taller neighbour's shadow (:func:`shaded_roofs`) does not
censor the rays that reach it: they cross it as shadowed ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from shapely.geometry.base import BaseGeometry

from baseline.core.geo import shadow_offset_m
from baseline.core.label_stats import label_median, label_quantile
from baseline.detect.frames import bearing_to_pixel, pixel_to_vector

# rays start only on edges whose outward normal is within this of the shadow
# direction: at 70 degrees the shadow beside a wall is still a third of the
# shadow's length wide, a few pixels for any building worth measuring
MAX_RAY_INCIDENCE_DEG = 70.0


def _swept(polygon: BaseGeometry, dx: float, dy: float) -> BaseGeometry:
    """``polygon`` swept along (dx, dy): itself, its translate, and every edge's parallelogram."""
    if dx == 0.0 and dy == 0.0:
        return polygon
    pieces = [polygon, shapely.affinity.translate(polygon, dx, dy)]
    polys = getattr(polygon, "geoms", [polygon])
    quads = []
    for poly in polys:
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)
            a, b = xy[:-1], xy[1:]
            shift = np.array([dx, dy])
            quads.append(np.stack([a, b, b + shift, a + shift, a], axis=1))
    if quads:
        q = np.concatenate(quads)
        quad_polys = shapely.polygons(q)
        quad_polys = quad_polys[shapely.area(quad_polys) > 1e-9]
        pieces.extend(shapely.make_valid(quad_polys).tolist())
    return shapely.union_all(pieces)


def ground_shadow(
    footprints: list[BaseGeometry] | np.ndarray,
    heights_m: np.ndarray,
    sun_elevation_deg: float,
    sun_azimuth_deg: float,
) -> BaseGeometry:
    """The ground shadow of all ``footprints`` (CRS metres) as one geometry."""
    footprints = list(footprints)
    if not footprints:
        return shapely.Polygon()
    swept = []
    for poly, h in zip(footprints, np.asarray(heights_m, dtype=float), strict=True):
        if not np.isfinite(h) or h <= 0:
            continue
        dx, dy = shadow_offset_m(float(h), sun_elevation_deg, sun_azimuth_deg)
        swept.append(_swept(poly, dx, dy))
    if not swept:
        return shapely.Polygon()
    return shapely.difference(shapely.union_all(swept), shapely.union_all(footprints))


def rasterize_ground_shadow(
    footprints: list[BaseGeometry] | np.ndarray,
    heights_m: np.ndarray,
    sun_elevation_deg: float,
    sun_azimuth_deg: float,
    transform: Affine,
    shape: tuple[int, int],
) -> np.ndarray:
    """Boolean raster of :func:`ground_shadow` on the grid ``transform``/``shape``."""
    geom = ground_shadow(footprints, heights_m, sun_elevation_deg, sun_azimuth_deg)
    if geom.is_empty:
        return np.zeros(shape, dtype=bool)
    return features.rasterize([(geom, 1)], out_shape=shape, transform=transform, fill=0, dtype="uint8").astype(bool)


@dataclass(frozen=True)
class ShadowHeight:
    """A height from shadow rays: NaN when no ray was usable."""

    height_m: float
    sigma_m: float
    rays_used: int
    rays_total: int
    lower_bound_m: float = float("nan")
    upper_bound_m: float = float("nan")


def _bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at pixel-centre coordinates (callers keep them inside)."""
    r0 = np.floor(rows).astype(np.int64)
    c0 = np.floor(cols).astype(np.int64)
    r0 = np.clip(r0, 0, image.shape[0] - 2)
    c0 = np.clip(c0, 0, image.shape[1] - 2)
    fr = np.clip(rows - r0, 0.0, 1.0)
    fc = np.clip(cols - c0, 0.0, 1.0)
    top = image[r0, c0] * (1 - fc) + image[r0, c0 + 1] * fc
    bottom = image[r0 + 1, c0] * (1 - fc) + image[r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def facing_cosine(
    labels: np.ndarray, rows: np.ndarray, cols: np.ndarray, drow: float, dcol: float, radius_px: int = 3
) -> np.ndarray:
    """Cosine between each edge pixel's outward normal and (drow, dcol).

    The outward normal points away from the centroid of the pixel's own
    building within ``radius_px``; 1 is an edge facing straight along the ray,
    0 an edge the ray grazes.
    """
    own = labels[rows, cols]
    h, w = labels.shape
    sum_r = np.zeros(len(rows))
    sum_c = np.zeros(len(rows))
    for dr in range(-radius_px, radius_px + 1):
        for dc in range(-radius_px, radius_px + 1):
            if dr * dr + dc * dc > radius_px * radius_px or (dr == 0 and dc == 0):
                continue
            same = labels[np.clip(rows + dr, 0, h - 1), np.clip(cols + dc, 0, w - 1)] == own
            sum_r += dr * same
            sum_c += dc * same
    norm = np.hypot(sum_r, sum_c) * math.hypot(drow, dcol)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = -(sum_r * drow + sum_c * dcol) / norm
    return np.where(norm > 0, cos, 1.0)


def trailing_edge_pixels(
    labels: np.ndarray, drow: float, dcol: float, max_incidence_deg: float = MAX_RAY_INCIDENCE_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and cols of building pixels whose neighbour towards (drow, dcol) is not the same building.

    Only edges whose outward normal lies within ``max_incidence_deg`` of the
    ray direction are kept: a ray from a wall nearly parallel to the sun runs
    along the wall inside a shadow sliver a pixel or less wide, which a shadow
    map does not resolve, so it would end almost at once and measure a
    building a few metres tall (one 23 m building came out 0.8 m so).
    """
    rows, cols = np.nonzero(labels)
    nr = np.clip(np.rint(rows + drow).astype(np.int64), 0, labels.shape[0] - 1)
    nc = np.clip(np.rint(cols + dcol).astype(np.int64), 0, labels.shape[1] - 1)
    edge = labels[nr, nc] != labels[rows, cols]
    rows, cols = rows[edge], cols[edge]
    if max_incidence_deg < 90.0:
        facing = facing_cosine(labels, rows, cols, drow, dcol) >= math.cos(math.radians(max_incidence_deg))
        rows, cols = rows[facing], cols[facing]
    return rows, cols


@dataclass
class RayMeets:
    """Per ray: the building it met in shadow (label, 0 if none), and where.

    ``t_exit`` is where the ray left its own building and ``t_met`` the first
    sample on the building it met, both in pixels along the ray from its start;
    the ground run between them was all in shadow.
    """

    label: np.ndarray
    t_met: np.ndarray
    t_exit: np.ndarray

    @classmethod
    def empty(cls, n: int) -> RayMeets:
        """No ray has met anything yet."""
        return cls(np.zeros(n, dtype=np.int64), np.full(n, np.nan), np.full(n, np.nan))


def roof_shadow_runs(
    labels: np.ndarray,
    darkness: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    meets: RayMeets,
    drow: float,
    dcol: float,
    *,
    threshold: float,
    step_px: float = 0.5,
    left_dark: np.ndarray | None = None,
) -> np.ndarray:
    """Horizontal distance (pixels, from the caster's edge) to where each ray's shadow ends on the roof it met.

    ``darkness`` is the brightness of each pixel relative to the sunlit part of
    its own roof (1 = sunlit); below ``threshold`` a roof pixel counts as
    shadowed. A ray that met building B carries on over B's roof while it stays
    dark: where it turns bright on B the shadow ends there (a measurement); a
    ray whose first roof sample is already bright ends at B's wall (the caster
    is no taller than B plus the ground run: an upper bound); a ray that leaves
    B still in shadow is censored (NaN); ``left_dark`` (an array like the
    result), when given, receives for such a ray the first sample off B.
    """
    n = len(rows)
    out = np.full(n, np.nan)
    idx = np.flatnonzero(meets.label > 0)
    if idx.size == 0:
        return out
    h, w = labels.shape
    target = meets.label[idx]
    t = meets.t_met[idx].copy()
    wall = t - step_px / 2.0
    r0, c0 = rows[idx].astype(float), cols[idx].astype(float)
    for step in range(int(math.hypot(h, w) / step_px) + 2):
        if idx.size == 0:
            break
        ir = np.rint(r0 + t * drow).astype(np.int64)
        ic = np.rint(c0 + t * dcol).astype(np.int64)
        inside = (ir >= 0) & (ir < h) & (ic >= 0) & (ic < w)
        lab = np.zeros(idx.size, dtype=np.int64)
        dark = np.zeros(idx.size, dtype=bool)
        lab[inside] = labels[ir[inside], ic[inside]]
        dark[inside] = darkness[ir[inside], ic[inside]] < threshold
        on_roof = lab == target
        lit = on_roof & ~dark
        out[idx[lit]] = np.maximum(t[lit] - step_px / 2.0, wall[lit]) - meets.t_exit[idx[lit]]
        if left_dark is not None and step > 0:
            left_dark[idx[~on_roof]] = t[~on_roof]
        keep = on_roof & dark
        idx, target, t, wall, r0, c0 = idx[keep], target[keep], t[keep] + step_px, wall[keep], r0[keep], c0[keep]
    return out


def ray_shadow_lengths(
    labels: np.ndarray,
    shadow: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    drow: float,
    dcol: float,
    *,
    valid: np.ndarray | None = None,
    threshold: float = 0.5,
    step_px: float = 0.5,
    max_px: float = 1000.0,
    bounds: np.ndarray | None = None,
    meets: RayMeets | None = None,
    max_gap_px: float = 0.0,
    shaded: np.ndarray | None = None,
) -> np.ndarray:
    """Shadow run length in pixels along (drow, dcol) from each start pixel; NaN where censored.

    When ``bounds`` (an array like the result) is given, it receives for each
    ray censored by meeting another building the length it ran in shadow until
    then: a lower bound of the true length (the shadow climbs that building).

    A ray first leaves its own building, then counts ground pixels whose shadow
    probability is at least ``threshold``; the end is placed by linear
    interpolation of the probability. Meeting any building, the image edge, an
    invalid pixel or ``max_px`` first censors the ray; a ray with no shadow at
    all just outside its building is censored too (a corner or a misfit edge).

    ``meets`` receives, for each ray that met another building while still in
    shadow, that building's label and where the ray left its own building and
    met the other; :func:`roof_shadow_runs` carries such rays on over the roof.

    ``shaded`` (a boolean per label, index 0 unused; see :func:`shaded_roofs`)
    marks roofs wholly in another building's shadow: a ray crosses them as
    shadowed ground instead of being censored there. The caster's shadow
    plane is above such a roof everywhere, so the shadow goes on beyond it and
    ends on the ground where the caster's own height puts it.
    """
    h, w = labels.shape
    n = len(rows)
    result = np.full(n, np.nan)
    if n == 0:
        return result
    own = labels[rows, cols]
    idx = np.arange(n)
    r0 = rows.astype(float)
    c0 = cols.astype(float)
    t_exit = np.full(n, np.nan)
    prev_p = np.ones(n)
    pending = np.full(n, np.nan)  # shadow length if the lit stretch now being crossed is the end
    gap_from = np.full(n, np.nan)  # where that lit stretch began
    # building pixels count as shadow for interpolation, so an edge does not pull
    # the first ground sample below the threshold (meeting a building censors anyway)
    # and so do invalid pixels: a shadow running into no-data must reach the
    # invalid pixel (and be censored there), not end early on interpolation
    solid = labels > 0 if valid is None else (labels > 0) | ~valid
    shadow = np.where(solid, 1.0, shadow).astype(np.float32)
    t = 0.01  # off the half-pixel ties of rounding
    max_steps = int(math.ceil(max_px / step_px)) + 4
    for _ in range(max_steps):
        if idx.size == 0:
            break
        t += step_px
        rr = r0[idx] + t * drow
        cc = c0[idx] + t * dcol
        ir = np.rint(rr).astype(np.int64)
        ic = np.rint(cc).astype(np.int64)
        inside = (ir >= 0) & (ir < h) & (ic >= 0) & (ic < w)
        lab = np.full(idx.size, -1, dtype=np.int64)
        lab[inside] = labels[ir[inside], ic[inside]]
        ok = inside.copy()
        if valid is not None:
            ok[inside] &= valid[ir[inside], ic[inside]]
        still_own = np.isnan(t_exit[idx]) & (lab == own[idx])
        exiting = np.isnan(t_exit[idx]) & ~still_own
        t_exit[idx[exiting]] = t - step_px / 2.0
        p = np.zeros(idx.size)
        rc = np.clip(rr, 0, h - 1)
        cc2 = np.clip(cc, 0, w - 1)
        p[inside] = _bilinear(shadow, rc[inside], cc2[inside])
        on_ground = ~still_own
        blocking = lab != 0
        if shaded is not None:
            blocking &= ~((lab > 0) & shaded[np.maximum(lab, 0)])
        censored = on_ground & (blocking | ~ok)
        in_gap = np.isfinite(gap_from[idx])
        if bounds is not None:
            hit = censored & ok & blocking & ~exiting & ~in_gap
            bounds[idx[hit]] = t - step_px / 2.0 - t_exit[idx[hit]]
        if meets is not None:
            hit = censored & ok & blocking & (lab > 0) & ~in_gap
            meets.label[idx[hit]] = lab[hit]
            meets.t_met[idx[hit]] = t
            meets.t_exit[idx[hit]] = t_exit[idx[hit]]
        dark = on_ground & ~censored & (p >= threshold)
        gap_from[idx[dark & in_gap]] = np.nan  # the shadow resumed: the lit stretch was an object in it
        pending[idx[dark & in_gap]] = np.nan
        lit = on_ground & ~censored & (p < threshold)
        # no shadow right at the edge: not a measurement
        empty = lit & exiting
        opens = lit & ~exiting & ~in_gap
        if opens.any():
            j = idx[opens]
            pp, pc = prev_p[j], p[opens]
            frac = np.where(pp > pc, (pp - threshold) / np.maximum(pp - pc, 1e-6), 0.5)
            t_end = t - step_px + np.clip(frac, 0.0, 1.0) * step_px
            pending[j] = np.maximum(t_end - t_exit[j], 0.0)
            gap_from[j] = t
        prev_p[idx] = p
        too_far = (t - np.nan_to_num(t_exit[idx], nan=t)) >= max_px
        gap_over = np.isfinite(gap_from[idx]) & (t - np.nan_to_num(gap_from[idx], nan=t) >= max_gap_px)
        # a shadow that ended before a lit stretch longer than the gap, or before
        # the ray met something in the lit stretch, ended where it went lit
        closes = np.isfinite(pending[idx]) & (gap_over | censored | too_far)
        result[idx[closes]] = pending[idx[closes]]
        finished = censored | empty | too_far | closes
        idx = idx[~finished]
    return result


def shadow_heights(
    labels: np.ndarray,
    shadow: np.ndarray,
    transform: Affine,
    sun_elevation_deg: float,
    sun_azimuth_deg: float,
    *,
    valid: np.ndarray | None = None,
    threshold: float = 0.5,
    max_height_m: float = 250.0,
    min_rays: int = 3,
    quantile: float = 0.5,
    lower_quantile: float = 0.5,
    max_gap_m: float = 0.0,
    max_incidence_deg: float = MAX_RAY_INCIDENCE_DEG,
    shaded: np.ndarray | None = None,
) -> dict[int, ShadowHeight]:
    """Per-label heights from the shadow map (probabilities) on the label grid.

    Buildings with fewer than ``min_rays`` uncensored rays get NaN (the caller
    falls back to another height source). ``quantile`` picks the ray estimate
    (0.5: the median); above 0.5 it leans against the short rays that graze the
    side of a shadow or stop at a car or tree in it, and against the bias of
    keeping only uncensored rays (long shadows are the ones that meet things).
    Rays start only on edges facing within ``max_incidence_deg`` of the shadow
    direction (see :func:`trailing_edge_pixels`).

    With ``shaded`` (see :func:`shaded_roofs`), rays cross roofs wholly in
    another building's shadow, and such a building's own rays give only an
    upper bound (``upper_bound_m``): its shadow lies inside the one that
    covers it, so where that shadow ends is the taller caster's doing.
    """
    drow, dcol = (float(v) for v in bearing_to_pixel(transform, sun_azimuth_deg + 180.0))
    east, north = pixel_to_vector(transform, drow, dcol)
    metres_per_px = float(math.hypot(east, north))
    tan_e = math.tan(math.radians(sun_elevation_deg))
    rows, cols = trailing_edge_pixels(labels, drow, dcol, max_incidence_deg)
    max_px = max_height_m / tan_e / metres_per_px
    bounds = np.full(len(rows), np.nan)
    lengths = ray_shadow_lengths(
        labels, shadow, rows, cols, drow, dcol, valid=valid, threshold=threshold, max_px=max_px, bounds=bounds,
        max_gap_px=max_gap_m / metres_per_px, shaded=shaded,
    )
    heights = lengths * metres_per_px * tan_e
    lower = bounds * metres_per_px * tan_e
    own = labels[rows, cols]
    quant = 0.5 * metres_per_px * tan_e
    out: dict[int, ShadowHeight] = {}
    order = np.argsort(own, kind="stable")
    own_sorted, heights_sorted, lower_sorted = own[order], heights[order], lower[order]
    splits = np.flatnonzero(np.diff(own_sorted)) + 1
    groups = zip(
        np.split(heights_sorted, splits), np.split(lower_sorted, splits), np.split(own_sorted, splits), strict=True
    )
    for group_h, group_lb, group_lab in groups:
        if group_lab.size == 0:
            continue
        good = group_h[np.isfinite(group_h)]
        lb = group_lb[np.isfinite(group_lb)]
        lower_m = float(np.quantile(lb, lower_quantile)) if lb.size >= min_rays else float("nan")
        if good.size >= min_rays and shaded is not None and shaded[group_lab[0]]:
            out[int(group_lab[0])] = ShadowHeight(
                float("nan"), float("nan"), 0, int(group_h.size), lower_m, float(np.quantile(good, quantile))
            )
        elif good.size >= min_rays:
            med = float(np.quantile(good, quantile))
            mad = float(np.median(np.abs(good - med))) * 1.4826
            out[int(group_lab[0])] = ShadowHeight(
                med, float(math.hypot(mad, quant)), int(good.size), int(group_h.size), lower_m
            )
        else:
            out[int(group_lab[0])] = ShadowHeight(
                float("nan"), float("nan"), int(good.size), int(group_h.size), lower_m
            )
    return out


def _unshaded_starts(
    labels: np.ndarray, rows: np.ndarray, cols: np.ndarray, shaded: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ray start pixels that are not on a roof marked in ``shaded``."""
    if shaded is None or rows.size == 0:
        return rows, cols
    keep = ~shaded[labels[rows, cols]]
    return rows[keep], cols[keep]


def shaded_roofs(
    brightness: np.ndarray,
    blueness: np.ndarray,
    labels: np.ndarray,
    *,
    min_blueness: float,
    max_brightness: float,
    quantile: float = 0.9,
    level: np.ndarray | None = None,
) -> np.ndarray:
    """Per label (index 0 unused, False): is the whole roof in another building's shadow?

    A roof wholly shaded has no sunlit part, so :func:`roof_darkness` (which
    compares a roof with its own sunlit part) sees nothing there and a tall
    neighbour's rays read as stopping at its wall. Such a roof keeps only the
    bluer skylight and is dark: its median blueness (blue over near-infrared)
    is at least ``min_blueness`` times the scene's typical roof (the median
    over roofs of each roof's median) and its sunlit level (the ``quantile``
    of its brightness) at most ``max_brightness`` times the scene's typical
    roof level. Both are relative to the scene, so the test does not depend
    on a sensor's calibration. Where the image has no blue or near-infrared
    band (blueness NaN) nothing is marked. ``level`` is as in :func:`roof_darkness`.
    """
    n = int(labels.max())
    out = np.zeros(n + 1, dtype=bool)
    if n == 0:
        return out
    blue_median = label_median(blueness, labels, n)
    if level is None:
        level = label_quantile(brightness, labels, n, quantile)
    usable = np.isfinite(blue_median) & np.isfinite(level)
    if not usable.any():
        return out
    typical_blue = float(np.median(blue_median[usable]))
    typical_level = float(np.median(level[usable]))
    with np.errstate(invalid="ignore"):
        out[1:] = usable & (blue_median >= min_blueness * typical_blue) & (level <= max_brightness * typical_level)
    return out


def roof_darkness(
    brightness: np.ndarray,
    labels: np.ndarray,
    quantile: float = 0.9,
    *,
    blueness: np.ndarray | None = None,
    min_blueness: float | None = None,
    sunlit: float = 0.8,
    level: np.ndarray | None = None,
) -> np.ndarray:
    """Each roof pixel's brightness relative to the sunlit part of its roof (1.0 off roofs).

    The sunlit level of a roof is a high ``quantile`` of its pixels, so a roof
    half in a neighbour's shadow still has its sunlit half as the reference.

    With ``blueness`` (blue over near-infrared per pixel) and ``min_blueness``,
    a darker pixel counts as shadow only where its blueness is at least
    ``min_blueness`` times that of the roof's sunlit pixels (those at least
    ``sunlit`` of the level): shadow keeps only the bluer skylight, while the
    far facet of a pitched roof, or a darker patch of roofing, is darker in
    every band alike. Such pixels get 1.0; so do roofs whose blueness is NaN
    (no blue or NIR band: the test cannot be made and darkness alone decides).

    ``level`` is each roof's sunlit level if already computed (labels 1..n,
    :func:`~baseline.core.label_stats.label_quantile` at ``quantile``).
    """
    out = np.ones(labels.shape, dtype=np.float32)
    n = int(labels.max())
    if n == 0:
        return out
    on = labels > 0
    level = np.concatenate([[np.nan], label_quantile(brightness, labels, n, quantile) if level is None else level])
    level = level.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = brightness[on] / level[labels[on]]
    ratio = np.where(np.isfinite(ratio), ratio, 1.0).astype(np.float32)
    if blueness is not None and min_blueness is not None:
        blue_on = blueness[on]
        lit = (ratio >= sunlit) & np.isfinite(blue_on)
        reference = np.full(n + 1, np.nan, dtype=np.float32)
        if lit.any():
            reference[1:] = label_median(blue_on[lit], labels[on][lit], n)
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = blue_on / reference[labels[on]]
        neutral = np.isfinite(relative) & (relative < float(min_blueness))
        ratio = np.where(neutral, np.float32(1.0), ratio)
    out[on] = ratio
    return out


def _add_through_roof_heights(
    out: dict[int, ShadowHeight],
    labels: np.ndarray,
    shadow: np.ndarray,
    darkness: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    own: np.ndarray,
    meets: RayMeets,
    left_dark: np.ndarray,
    drow: float,
    dcol: float,
    to_m: float,
    *,
    valid: np.ndarray | None,
    threshold: float,
    darkness_threshold: float,
    max_px: float,
    max_gap_px: float,
    shaded: np.ndarray | None,
    min_rays: int,
    max_roofs: int = 3,
) -> None:
    """Heights, into ``out``, of buildings whose rays crossed roofs in shadow and came down on shadowed ground.

    Each such ray is traced on from its last sample on the roof it crossed
    (:func:`ray_shadow_lengths`, that roof as its own building); where it
    meets another roof in shadow and crosses that one dark too, it is traced
    on again (up to ``max_roofs`` roofs). The whole run from the caster's
    edge to where the ground shadow ends gives the height. Only buildings
    without a finite height are given one.
    """
    h, w = labels.shape
    step = 0.5
    ray = np.flatnonzero(np.isfinite(left_dark))  # index of the caster's ray
    crossed = meets.label[ray]  # the roof each ray crossed last
    base = left_dark[ray] - meets.t_exit[ray]  # run from the caster's edge to where it left that roof
    at = left_dark[ray] - step  # its last sample on that roof, along the caster's ray
    totals = np.full(own.size, np.nan)
    for _ in range(max_roofs):
        if ray.size == 0:
            break
        sr = np.rint(rows[ray] + at * drow).astype(np.int64)
        sc = np.rint(cols[ray] + at * dcol).astype(np.int64)
        ok = (sr >= 0) & (sr < h) & (sc >= 0) & (sc < w)
        ok[ok] &= labels[sr[ok], sc[ok]] == crossed[ok]
        ray, crossed, base, at, sr, sc = ray[ok], crossed[ok], base[ok], at[ok], sr[ok], sc[ok]
        if ray.size == 0:
            break
        hop = RayMeets.empty(ray.size)
        beyond = ray_shadow_lengths(labels, shadow, sr, sc, drow, dcol, valid=valid, threshold=threshold,
                                    max_px=max_px, max_gap_px=max_gap_px, shaded=shaded, meets=hop)
        # the shadow beyond the last roof must outrun that building's own (which ends h / tan(elevation)
        # past its far edge), else its end may be that building's: its height must be known, and the
        # run beyond it longer by a pixel
        height = np.array([out[int(b)].height_m if int(b) in out else np.nan for b in crossed])
        ends = np.isfinite(beyond) & (beyond * to_m > height + to_m)
        totals[ray[ends]] = (base[ends] + beyond[ends]) * to_m
        # rays that met another roof in shadow: carry them over it, and on if they leave it still dark
        going = hop.label > 0
        if not going.any():
            break
        leave = np.full(int(going.sum()), np.nan)
        roof_shadow_runs(labels, darkness, sr[going], sc[going], _subset(hop, going), drow, dcol,
                         threshold=darkness_threshold, left_dark=leave)
        next_left = np.full(ray.size, np.nan)
        next_left[going] = leave
        on = np.isfinite(next_left)
        # positions along the caster's ray: this trace started at ``at``, left its roof at hop.t_exit
        ray, crossed = ray[on], hop.label[on]
        base = base[on] + (next_left[on] - hop.t_exit[on])
        at = at[on] + next_left[on] - step
    good = np.isfinite(totals)
    quant = 0.5 * to_m
    for lab in np.unique(own[good]):
        prior = out.get(int(lab))
        if prior is not None and np.isfinite(prior.height_m):
            continue
        values = totals[good & (own == lab)]
        if values.size < min_rays:
            continue
        med = float(np.median(values))
        mad = float(np.median(np.abs(values - med))) * 1.4826
        total_rays = prior.rays_total if prior is not None else int((own == lab).sum())
        lower = prior.lower_bound_m if prior is not None else float("nan")
        upper = prior.upper_bound_m if prior is not None else float("nan")
        out[int(lab)] = ShadowHeight(med, float(math.hypot(mad, quant)), int(values.size), total_rays, lower, upper)


def _subset(meets: RayMeets, keep: np.ndarray) -> RayMeets:
    """The rays of ``meets`` where ``keep`` is true."""
    return RayMeets(meets.label[keep], meets.t_met[keep], meets.t_exit[keep])


def chained_shadow_heights(
    labels: np.ndarray,
    shadow: np.ndarray,
    darkness: np.ndarray,
    transform: Affine,
    sun_elevation_deg: float,
    sun_azimuth_deg: float,
    known: dict[int, ShadowHeight],
    *,
    valid: np.ndarray | None = None,
    threshold: float = 0.5,
    darkness_threshold: float = 0.4,
    min_rays: int = 3,
    passes: int = 3,
    max_height_m: float = 250.0,
    min_roof_run_px: float = 1.5,
    max_gap_m: float = 0.0,
    max_contradicting: float = 3.0,
    max_incidence_deg: float = MAX_RAY_INCIDENCE_DEG,
    shade_neighbours: bool = False,
    shaded: np.ndarray | None = None,
    through_roofs: bool = False,
) -> dict[int, ShadowHeight]:
    """``known`` with heights added for buildings whose shadow falls on a neighbour's roof, or that a neighbour's falls on.

    A roof point of building A at height ``hA`` shades a neighbour B (height
    ``hB``) until the horizontal distance ``(hA - hB) / tan(elevation)`` from
    A's edge, so where A's rays cross the ground in shadow, meet B and carry on
    over B's darkened roof, the point where the roof turns bright gives
    ``hA = hB + distance * tan(elevation)``. A ray whose shadow stops at B's
    wall gives an upper bound ``hB + ground run * tan(elevation)`` instead.
    ``hB`` comes from B's own ground shadow, or from this same chaining in an
    earlier pass (up to ``passes``). Buildings that already have a height keep it.

    The rays must agree. A ray whose shadow stops at B's wall after a ground run
    ``g`` says ``hA <= hB + g * tan(elevation)``; a roof measurement more than
    a pixel of shadow run above that bound is contradicted by it (the shadow
    edge would have climbed onto the roof there too). A measurement is kept
    only while the rays that contradict it number at most
    ``max_contradicting`` times the rays that support it. A few dark roof runs among many rays that stop at the wall at the same
    distance are roof fixtures' shadows or dark patches, not this building's
    shadow (such runs once made a 23 m building 78 m tall beside a 65 m one);
    the rays at the wall then give the upper bound.

    With ``shade_neighbours`` the same rays also run the other way: a building
    B with no height of its own gets ``hB = hA - run * tan(elevation)`` from
    known buildings A whose shadow ends on B's roof (``run`` from A's wall to
    where B's roof turns sunlit; at least ``min_rays`` such rays, and not
    contradicted by as many rays of known casters whose shadow stops at B's
    wall, which say B's roof is above the shadow there). A building in a dense
    block whose own shadow only falls on other roofs is often shaded by a
    measured neighbour.

    ``shaded`` is as in :func:`shadow_heights`: rays cross such roofs, and
    they cast no rays of their own.

    With ``through_roofs``, a ray that crosses B's roof in shadow all the way
    and comes down on the ground beyond it still in shadow is traced on (over
    further roofs it crosses dark, up to three): A's shadow plane was above
    those roofs along the whole ray, so the shadow ends on the ground where
    A's own height puts it, and that end measures A (at least ``min_rays``
    such rays, for buildings with no height yet).
    """
    out = dict(known)
    drow, dcol = (float(v) for v in bearing_to_pixel(transform, sun_azimuth_deg + 180.0))
    east, north = pixel_to_vector(transform, drow, dcol)
    metres_per_px = float(math.hypot(east, north))
    to_m = metres_per_px * math.tan(math.radians(sun_elevation_deg))
    rows, cols = _unshaded_starts(labels, *trailing_edge_pixels(labels, drow, dcol, max_incidence_deg), shaded)
    own = labels[rows, cols]
    if not shade_neighbours:
        unresolved = np.array([not (lab in out and np.isfinite(out[lab].height_m)) for lab in own], dtype=bool)
        rows, cols, own = rows[unresolved], cols[unresolved], own[unresolved]
    if own.size == 0:
        return out
    meets = RayMeets.empty(own.size)
    ray_shadow_lengths(
        labels, shadow, rows, cols, drow, dcol, valid=valid, threshold=threshold,
        max_px=max_height_m / to_m, meets=meets, max_gap_px=max_gap_m / metres_per_px, shaded=shaded,
    )
    left_dark = np.full(own.size, np.nan)
    run = roof_shadow_runs(labels, darkness, rows, cols, meets, drow, dcol, threshold=darkness_threshold,
                           left_dark=left_dark)
    ground = np.maximum(meets.t_met - 0.25 - meets.t_exit, 0.0)
    roof_run = run - ground
    at_wall = roof_run <= 1e-6
    # a shadow that covers only a pixel or so of roof is not told from a dark rim
    ambiguous = ~at_wall & (roof_run < min_roof_run_px)
    on_roof = (meets.label > 0) & np.isfinite(run) & ~at_wall & ~ambiguous
    quant = 0.5 * to_m
    for _ in range(passes):
        height_of = np.full(int(labels.max()) + 1, np.nan)
        sigma_of = np.full_like(height_of, np.nan)
        for lab, sh in out.items():
            if np.isfinite(sh.height_m):
                height_of[lab], sigma_of[lab] = sh.height_m, sh.sigma_m
        base = height_of[meets.label]
        usable = np.isfinite(base) & np.isfinite(run) & (meets.label > 0)
        estimate = base + run * to_m
        # a known caster whose shadow ends on a roof measures that roof: hB = hA - run * tan(elevation)
        caster = height_of[own]
        shades = on_roof & np.isfinite(caster) if shade_neighbours else np.zeros(own.size, dtype=bool)
        shaded_estimate = caster - run * to_m
        lit_walls = (meets.label > 0) & np.isfinite(run) & at_wall & np.isfinite(caster)
        candidates = np.union1d(own, meets.label[shades])
        added = 0
        for lab in candidates:
            if np.isfinite(height_of[lab]):
                continue
            mine = own == lab
            measured = mine & usable & ~at_wall & ~ambiguous
            bounded = mine & usable & at_wall
            prior = out.get(int(lab), ShadowHeight(float("nan"), float("nan"), 0, int(mine.sum())))
            med = float(np.median(estimate[measured])) if measured.any() else float("nan")
            contradicting = int((bounded & (estimate < med - to_m)).sum())
            if measured.sum() >= min_rays and contradicting <= max_contradicting * measured.sum():
                values = estimate[measured]
                mad = float(np.median(np.abs(values - med))) * 1.4826
                chain = float(np.nanmedian(sigma_of[meets.label[measured]]))
                out[int(lab)] = ShadowHeight(
                    med, float(np.sqrt(mad**2 + chain**2 + quant**2)), int(measured.sum()), prior.rays_total,
                    prior.lower_bound_m, prior.upper_bound_m,
                )
                added += 1
                continue
            if bounded.sum() >= min_rays:
                upper = float(np.nanmin([np.median(estimate[bounded]), prior.upper_bound_m]))
                prior = ShadowHeight(
                    prior.height_m, prior.sigma_m, prior.rays_used, prior.rays_total, prior.lower_bound_m, upper
                )
                out[int(lab)] = prior
            shaded_rays = shades & (meets.label == lab)
            # a known caster whose shadow stops at this wall says this roof is at least as high as
            # the shadow there: a measurement far under that is a dark patch on the roof, not a shadow
            floor = lit_walls & (meets.label == lab)
            if shaded_rays.sum() >= min_rays:
                values = shaded_estimate[shaded_rays]
                med = float(np.median(values))
                contradicting = int((floor & (shaded_estimate > med + to_m)).sum())
                if med > 0.0 and contradicting <= max_contradicting * shaded_rays.sum():
                    mad = float(np.median(np.abs(values - med))) * 1.4826
                    chain = float(np.nanmedian(sigma_of[own[shaded_rays]]))
                    out[int(lab)] = ShadowHeight(
                        med, float(np.sqrt(mad**2 + chain**2 + quant**2)), int(shaded_rays.sum()), prior.rays_total,
                        prior.lower_bound_m, prior.upper_bound_m,
                    )
                    added += 1
        if added == 0:
            break
    if through_roofs:
        _add_through_roof_heights(
            out, labels, shadow, darkness, rows, cols, own, meets, left_dark, drow, dcol, to_m,
            valid=valid, threshold=threshold, darkness_threshold=darkness_threshold, max_px=max_height_m / to_m,
            max_gap_px=max_gap_m / metres_per_px, shaded=shaded, min_rays=min_rays,
        )
    return out
