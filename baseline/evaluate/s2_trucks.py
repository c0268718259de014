"""Scoring Sentinel-2 moving-truck detections against a render's truth.

The truth objects are the render's moving large vehicles (``class`` or
``vehicle_class`` ``large`` and ``moving``), at their position at B04 time
(the box centroid: the renderer's reference instant). A detection matches one
truth truck within ``radius_m`` (optimal one-to-one assignment,
:func:`baseline.evaluate.matching.match_vehicles`). Unmatched detections are
false positives whatever lies under them; they are also broken down by what
the nearest truth vehicle is (a moving car, a standing vehicle, nothing), so a
reader can see what the detector confuses. Speed and heading errors are over
matched pairs only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from baseline.evaluate.matching import match_vehicles
from baseline.evaluate.metrics import angle_difference_deg, mae, precision_recall_f1

RADIUS_M = 15.0
"""Match radius: one and a half Sentinel-2 pixels (a truck is 8-18 m long)."""


@dataclass(frozen=True)
class TruckScore:
    """Detection quality on one scene (or pooled over several).

    Attributes:
        n_truth, n_pred, tp, fp, fn: counts.
        precision, recall, f1: None where undefined.
        speed_mae_kmh, speed_bias_kmh: over matched pairs (detected minus true).
        speed_mape: mean absolute relative speed error.
        heading_mae_deg: mean smallest angle between detected and true heading.
        fp_near: false positives by the nearest truth vehicle within the radius:
            ``moving_car``, ``standing`` (parked or queued, any class), ``none``.
        speed_errors_kmh, heading_errors_deg: the matched pairs' errors (for pooling).
    """

    n_truth: int
    n_pred: int
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    speed_mae_kmh: float | None
    speed_bias_kmh: float | None
    speed_mape: float | None
    heading_mae_deg: float | None
    fp_near: dict[str, int] = field(default_factory=dict)
    speed_errors_kmh: tuple[float, ...] = ()
    speed_rel_errors: tuple[float, ...] = ()
    heading_errors_deg: tuple[float, ...] = ()
    matched_ids: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (without the per-pair error lists)."""
        out = asdict(self)
        for key in ("speed_errors_kmh", "speed_rel_errors", "heading_errors_deg", "matched_ids"):
            out.pop(key)
        return out


def _class_column(vehicles: gpd.GeoDataFrame) -> str:
    for name in ("class", "vehicle_class"):
        if name in vehicles.columns:
            return name
    raise KeyError("vehicles table has neither 'class' nor 'vehicle_class'")


def moving_trucks(vehicles: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The truth objects: moving large vehicles, as points at their box centroid."""
    cls = _class_column(vehicles)
    sel = (vehicles[cls].astype(str) == "large").to_numpy() & vehicles["moving"].to_numpy(dtype=bool)
    out = vehicles[sel].copy()
    return out.set_geometry(shapely.centroid(out.geometry.values), crs=vehicles.crs).reset_index(drop=True)


def score_trucks(detections: gpd.GeoDataFrame, vehicles: gpd.GeoDataFrame, radius_m: float = RADIUS_M,
                 within: shapely.Geometry | None = None) -> TruckScore:
    """Precision, recall, F1 and speed/heading errors of ``detections`` against the render's ``vehicles``.

    ``within`` optionally restricts both sides to an area (e.g. the image's valid footprint).
    """
    truth = moving_trucks(vehicles)
    det = detections
    if within is not None:
        truth = truth[shapely.contains(within, truth.geometry.values)].reset_index(drop=True)
        det = det[shapely.contains(within, det.geometry.values)].reset_index(drop=True)
    m = match_vehicles(det.geometry.values, truth.geometry.values, radius=radius_m)
    precision, recall, f1 = precision_recall_f1(m.tp, m.fp, m.fn)
    speed_err = det["speed_kmh"].to_numpy(float)[m.pred] - truth["speed_kmh"].to_numpy(float)[m.truth]
    rel = speed_err / np.maximum(truth["speed_kmh"].to_numpy(float)[m.truth], 1e-6)
    head_err = angle_difference_deg(det["heading_deg"].to_numpy(float)[m.pred],
                                    truth["heading_deg"].to_numpy(float)[m.truth])
    unmatched = np.setdiff1d(np.arange(len(det)), m.pred)
    return TruckScore(
        n_truth=len(truth), n_pred=len(det), tp=m.tp, fp=m.fp, fn=m.fn,
        precision=precision, recall=recall, f1=f1,
        speed_mae_kmh=mae(speed_err), speed_bias_kmh=float(np.mean(speed_err)) if len(speed_err) else None,
        speed_mape=mae(rel), heading_mae_deg=mae(head_err),
        fp_near=_false_positive_context(det.geometry.values[unmatched], vehicles, radius_m),
        speed_errors_kmh=tuple(float(v) for v in speed_err), speed_rel_errors=tuple(float(v) for v in rel),
        heading_errors_deg=tuple(float(v) for v in head_err),
        matched_ids=tuple(int(v) for v in truth["vehicle_id"].to_numpy()[m.truth]) if "vehicle_id" in truth else (),
    )


def _false_positive_context(points: np.ndarray, vehicles: gpd.GeoDataFrame, radius_m: float) -> dict[str, int]:
    """What the nearest truth vehicle within ``radius_m`` of each false positive is."""
    out = {"moving_car": 0, "standing": 0, "moving_truck": 0, "none": 0}
    if len(points) == 0:
        return out
    centres = shapely.centroid(vehicles.geometry.values)
    tree = shapely.STRtree(centres)
    cls = vehicles[_class_column(vehicles)].astype(str).to_numpy()
    moving = vehicles["moving"].to_numpy(dtype=bool)
    for p in points:
        j = tree.nearest(p)
        if j is None or shapely.distance(p, centres[j]) > radius_m:
            out["none"] += 1
        elif not moving[j]:
            out["standing"] += 1
        elif cls[j] == "large":
            out["moving_truck"] += 1  # a truck already matched to another detection
        else:
            out["moving_car"] += 1
    return out


def pooled(scores: list[TruckScore]) -> TruckScore:
    """Scores over several scenes: counts summed, errors over all matched pairs."""
    tp, fp, fn = (sum(getattr(s, k) for s in scores) for k in ("tp", "fp", "fn"))
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    speed = np.array([e for s in scores for e in s.speed_errors_kmh])
    rel = np.array([e for s in scores for e in s.speed_rel_errors])
    head = np.array([e for s in scores for e in s.heading_errors_deg])
    near: dict[str, int] = {}
    for s in scores:
        for k, v in s.fp_near.items():
            near[k] = near.get(k, 0) + v
    return TruckScore(
        n_truth=sum(s.n_truth for s in scores), n_pred=sum(s.n_pred for s in scores), tp=tp, fp=fp, fn=fn,
        precision=precision, recall=recall, f1=f1, speed_mae_kmh=mae(speed),
        speed_bias_kmh=float(np.mean(speed)) if len(speed) else None, speed_mape=mae(rel), heading_mae_deg=mae(head),
        fp_near=near, speed_errors_kmh=tuple(speed), speed_rel_errors=tuple(rel), heading_errors_deg=tuple(head),
    )


# --- the carriageway of an image without a map (the real Sentinel-2 crop) -----------------------


@dataclass(frozen=True)
class Carriageway:
    """A straight road found in the image: its axis, width and the road-like pixels along it.

    Attributes:
        mask: ``(y, x)`` True on road-like pixels within ``half_width_px`` of the axis.
        corridor: ``(y, x)`` True within ``half_width_px`` of the axis (road-like or not).
        angle_deg: the axis direction, degrees from the column axis, counter-clockwise (image rows down).
        offset_px: signed distance of the axis from the image centre, pixels.
        support: road-like pixels in the corridor (the Hough vote).
    """

    mask: np.ndarray
    corridor: np.ndarray
    angle_deg: float
    offset_px: float
    half_width_px: float
    support: int


def road_like(reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Asphalt-like pixels: not vegetated (NDVI < 0.25), not water (NIR > 0.06), visible 0.04-0.2.

    A truck's rainbow pixels are brighter and coloured, so the mask is closed by one
    pixel to bridge them.
    """
    from scipy import ndimage

    b, g, r, n = (np.asarray(reflectance[i], dtype=np.float32) for i in range(4))
    ndvi = (n - r) / np.maximum(n + r, 1e-6)
    vis = (b + g + r) / 3.0
    like = (ndvi < 0.25) & (n > 0.06) & (vis > 0.04) & (vis < 0.2) & valid
    return ndimage.binary_closing(like, iterations=1) & valid


def derive_carriageway(reflectance: np.ndarray, valid: np.ndarray, half_width_px: float = 2.0,
                       angle_step_deg: float = 0.5) -> Carriageway:
    """The dominant straight asphalt ribbon (Hough vote of road-like pixels in a strip).

    For every direction and offset, road-like pixels within ``half_width_px`` of the
    line are counted; the line with most votes is the carriageway's axis. The image
    alone decides it: no detection enters the vote.
    """
    like = road_like(reflectance, valid)
    h, w = like.shape
    rows, cols = np.nonzero(like)
    y = rows + 0.5 - h / 2.0
    x = cols + 0.5 - w / 2.0
    best = (-1, 0.0, 0.0)
    reach = math.hypot(h, w) / 2.0
    bins = np.arange(-reach, reach + 1.0, 1.0)
    for angle in np.arange(0.0, 180.0, angle_step_deg):
        t = math.radians(angle)
        # signed distance of each pixel from a line through the centre at this angle
        dist = -x * math.sin(t) - y * math.cos(t)
        hist, _ = np.histogram(dist, bins=bins)
        strip = int(round(2 * half_width_px))
        votes = np.convolve(hist, np.ones(strip + 1, dtype=int), mode="same")
        k = int(np.argmax(votes))
        if votes[k] > best[0]:
            best = (int(votes[k]), float(angle), float(bins[k] + 0.5))
    support, angle, offset = best
    t = math.radians(angle)
    rr, cc = np.mgrid[0:h, 0:w]
    dist = -(cc + 0.5 - w / 2.0) * math.sin(t) - (rr + 0.5 - h / 2.0) * math.cos(t)
    corridor = np.abs(dist - offset) <= half_width_px + 0.5
    return Carriageway(mask=like & corridor, corridor=corridor, angle_deg=angle, offset_px=offset,
                       half_width_px=half_width_px, support=support)


def on_carriageway(rows: np.ndarray, cols: np.ndarray, road: Carriageway, tolerance_px: int = 1) -> np.ndarray:
    """True for each (fractional) pixel position on the carriageway mask, or within ``tolerance_px`` of it."""
    from scipy import ndimage

    mask = ndimage.binary_dilation(road.mask, iterations=tolerance_px) if tolerance_px else road.mask
    r = np.clip(np.floor(rows).astype(int), 0, mask.shape[0] - 1)
    c = np.clip(np.floor(cols).astype(int), 0, mask.shape[1] - 1)
    return mask[r, c] & road.corridor[r, c]
