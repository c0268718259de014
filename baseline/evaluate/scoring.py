"""Building and vehicle scores of a prediction table against a truth table (same CRS, metres).

Attribute scores (height, on-road, moving, speed, class) are taken over matched
pairs only; when either table lacks the attribute's column the score is left
out and a line in ``notes`` says so.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from baseline.core.schemas import VEHICLE_CLASSES, VEHICLE_CONTEXTS
from baseline.evaluate.building_errors import building_error_kinds
from baseline.evaluate.matching import Matches, geometries, match_buildings, match_vehicles
from baseline.evaluate.metrics import (
    accuracy,
    angle_difference_deg,
    bias,
    mae,
    precision_recall_f1,
    ratio,
    relative_count_error,
    rmse,
    share_error,
)


def _has(frame: gpd.GeoDataFrame, column: str) -> bool:
    return column in frame.columns


def _missing(column: str, pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, pred_name: str, truth_name: str) -> str | None:
    """Which table lacks ``column``, in words; None when both have it."""
    lacking = [name for name, frame in ((pred_name, pred), (truth_name, truth)) if not _has(frame, column)]
    return None if not lacking else f"{' and '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} no {column!r}"


def _counts(prefix: str, m: Matches) -> dict[str, Any]:
    precision, recall, f1 = precision_recall_f1(m.tp, m.fp, m.fn)
    return {
        f"{prefix}_tp": m.tp, f"{prefix}_fp": m.fp, f"{prefix}_fn": m.fn,
        f"{prefix}_precision": precision, f"{prefix}_recall": recall, f"{prefix}_f1": f1,
    }


def building_metrics(
    pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, iou: float = 0.5, *,
    pred_name: str = "predictions", truth_name: str = "truth",
) -> dict[str, Any]:
    """Detection, count and height scores of buildings matched at IoU >= ``iou``.

    Unmatched footprints are counted by kind too (``building_fn_merged`` and
    the like, :mod:`baseline.evaluate.building_errors`), so a low F1 says
    whether buildings were missed, merged, split or badly outlined.
    """
    shapes = geometries(pred), geometries(truth)  # made valid once, for the matching and the error kinds
    m = match_buildings(*shapes, iou)
    out: dict[str, Any] = _counts("building", m)
    out["building_count_error"] = relative_count_error(m.n_pred, m.n_truth)
    out["building_pred_count"], out["building_truth_count"] = m.n_pred, m.n_truth
    out["building_iou_mean"] = float(np.mean(m.score)) if m.tp else None
    out.update(building_error_kinds(*shapes, m))
    out.update(recall_by_footprint_area(shapes[1], m))
    notes = []
    why = _missing("height_m", pred, truth, pred_name, truth_name)
    if why is None:
        truth_h = truth["height_m"].to_numpy(dtype=float)[m.truth]
        err = pred["height_m"].to_numpy(dtype=float)[m.pred] - truth_h
        out.update(height_mae_m=mae(err), height_rmse_m=rmse(err), height_bias_m=bias(err))
        out.update(_height_bands(err, truth_h))
        sigma = pred["height_sigma_m"].to_numpy(dtype=float)[m.pred] if "height_sigma_m" in pred.columns else None
        if sigma is not None:
            out.update(interval_coverage(err, sigma))
        if _has(pred, "height_source"):
            out.update(_height_sources(err, pred["height_source"].astype(str).to_numpy()[m.pred], sigma))
    else:
        notes.append(f"height metrics left out: {why}")
    out["notes"] = notes
    return out


# footprint-size classes of truth buildings: kiosks, shelters and sheds; garages and small houses; the rest
AREA_CLASSES_M2 = (("under_30m2", 0.0, 30.0), ("30_60m2", 30.0, 60.0), ("over_60m2", 60.0, float("inf")))


def recall_by_footprint_area(truth: np.ndarray, m: Matches) -> dict[str, Any]:
    """Recall and count of truth buildings per footprint-size class (``truth`` in a metric CRS).

    One F1 hides where the misses are: on the renders the shipped model finds
    about 96% of footprints over 60 m² but under a third of those under 30 m²
    (kiosks, tram shelters, sheds a few output pixels across), which are about
    a tenth of the buildings. Precision has no such split: a false footprint
    has no true size.
    """
    area = shapely.area(truth)
    found = np.zeros(len(truth), bool)
    found[m.truth] = True
    out: dict[str, Any] = {}
    for name, lo, hi in AREA_CLASSES_M2:
        cls = (area >= lo) & (area < hi)
        out[f"building_recall_{name}"] = ratio(int(found[cls].sum()), int(cls.sum()))
        out[f"building_truth_count_{name}"] = int(cls.sum())
    return out


# height bands by true height: low-rise, mid-rise, tall (tall buildings are the ones products squash)
HEIGHT_BANDS_M = (("under_10m", 0.0, 10.0), ("10_30m", 10.0, 30.0), ("over_30m", 30.0, float("inf")))


def _height_bands(err: np.ndarray, truth_h: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE, bias and count of height errors per band of true height."""
    out: dict[str, Any] = {}
    for name, lo, hi in HEIGHT_BANDS_M:
        band = (truth_h >= lo) & (truth_h < hi)
        out[f"height_mae_m_{name}"] = mae(err[band])
        out[f"height_rmse_m_{name}"] = rmse(err[band])
        out[f"height_bias_m_{name}"] = bias(err[band])
        out[f"height_count_{name}"] = int(band.sum())
    return out


def _height_sources(err: np.ndarray, source: np.ndarray, sigma: np.ndarray | None) -> dict[str, Any]:
    """MAE, bias, count and 95%-interval share of height errors per ``height_source`` (shadow, learned, dsm).

    The sources differ by an order of magnitude in accuracy, so a scene's
    height MAE mostly says how many of its buildings fell back to the
    learned head; these say which evidence is off.
    """
    out: dict[str, Any] = {}
    for name in sorted(set(source.tolist())):
        mine = source == name
        out[f"height_mae_m_{name}"] = mae(err[mine])
        out[f"height_bias_m_{name}"] = bias(err[mine])
        out[f"height_count_{name}"] = int(mine.sum())
        if sigma is not None:
            out[f"height_within_95_interval_{name}"] = interval_coverage(err[mine], sigma[mine])[
                "height_within_95_interval"]
    return out


def interval_coverage(err: np.ndarray, sigma: np.ndarray) -> dict[str, Any]:
    """Share of matched heights whose error lies within their 95% interval (1.96 ``height_sigma_m``).

    An honest uncertainty gives about 0.95; less means the sigmas are too
    small. Buildings without a finite sigma are left out.
    """
    ok = np.isfinite(err) & np.isfinite(sigma) & (sigma > 0)
    within = np.abs(err[ok]) <= 1.96 * sigma[ok]
    return {"height_within_95_interval": float(within.mean()) if ok.any() else None,
            "height_count_with_sigma": int(ok.sum())}


def _class_metrics(pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, radius: float) -> dict[str, Any]:
    """Precision, recall and F1 per class, matching each class on its own."""
    out: dict[str, Any] = {}
    p_cls = pred["class"].astype(str).to_numpy()
    t_cls = truth["class"].astype(str).to_numpy()
    classes = list(VEHICLE_CLASSES) + sorted((set(p_cls) | set(t_cls)) - set(VEHICLE_CLASSES))
    for cls in classes:
        m = match_vehicles(pred[p_cls == cls], truth[t_cls == cls], radius)
        for key, value in _counts("vehicle", m).items():
            out[f"{key}_{cls}"] = value
    return out


# the truth's finer contexts, as the map places a vehicle (classify.on_road.ROAD_CONTEXTS)
TRUTH_TO_MAP_CONTEXT = {"lane": "road", "queue": "road", "kerb": "kerb", "car_park": "car_park"}
MAP_CONTEXTS = ("road", "kerb", "car_park")


def _map_context_metrics(pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, m: Any) -> dict[str, Any]:
    """Precision, recall, F1 and on-road accuracy per map context: road, kerb, car park.

    Recall and on-road accuracy go by the truth's context (lanes and queues
    are the road); precision by the context the pipeline gave its detection
    (when ``pred`` has ``context``), so a false car on a kerb counts against
    the kerb. These are the rates the car-park, kerb and road figures rest on.
    """
    out: dict[str, Any] = {}
    t_ctx = truth["context"].astype(str).map(lambda c: TRUTH_TO_MAP_CONTEXT.get(c, "off_road")).to_numpy()
    p_ctx = pred["context"].astype(str).to_numpy() if _has(pred, "context") else None
    found = np.zeros(len(truth), dtype=bool)
    found[m.truth] = True
    matched = np.zeros(len(pred), dtype=bool)
    matched[m.pred] = True
    on_road = _has(pred, "on_road") and _has(truth, "on_road")
    for ctx in MAP_CONTEXTS:
        in_t = t_ctx == ctx
        recall = float(found[in_t].mean()) if in_t.any() else None
        precision = None
        if p_ctx is not None and (p_ctx == ctx).any():
            precision = float(matched[p_ctx == ctx].mean())
        out[f"vehicle_recall_ctx_{ctx}"] = recall
        out[f"vehicle_precision_ctx_{ctx}"] = precision
        out[f"vehicle_f1_ctx_{ctx}"] = (
            2 * precision * recall / (precision + recall) if precision and recall else None)
        if on_road:
            pairs = in_t[m.truth]
            p_on = pred["on_road"].fillna(False).to_numpy(dtype=bool)[m.pred][pairs]
            t_on = truth["on_road"].fillna(False).to_numpy(dtype=bool)[m.truth][pairs]
            out[f"on_road_accuracy_ctx_{ctx}"] = accuracy(p_on, t_on) if pairs.any() else None
    return out


def vehicle_metrics(
    pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, radius: float = 1.5, *,
    pred_name: str = "predictions", truth_name: str = "truth",
) -> dict[str, Any]:
    """Detection, count, on-road, moving, speed and class scores of vehicles matched within ``radius``."""
    m = match_vehicles(pred, truth, radius)
    out: dict[str, Any] = _counts("vehicle", m)
    out["vehicle_count_error"] = relative_count_error(m.n_pred, m.n_truth)
    out["vehicle_pred_count"], out["vehicle_truth_count"] = m.n_pred, m.n_truth
    out["vehicle_distance_mean_m"] = float(np.mean(m.score)) if m.tp else None
    notes = []

    why = _missing("on_road", pred, truth, pred_name, truth_name)
    if why is None:
        p_on = pred["on_road"].fillna(False).to_numpy(dtype=bool)
        t_on = truth["on_road"].fillna(False).to_numpy(dtype=bool)
        out["on_road_accuracy"] = accuracy(p_on[m.pred], t_on[m.truth])
        out["on_road_share_error"] = share_error(p_on, t_on)
        out["on_road_share_pred"] = float(p_on.mean()) if len(p_on) else None
        out["on_road_share_truth"] = float(t_on.mean()) if len(t_on) else None
    else:
        notes.append(f"on-road metrics left out: {why}")

    why = _missing("class", pred, truth, pred_name, truth_name)
    if why is None:
        out["vehicle_class_accuracy"] = accuracy(
            pred["class"].astype(str).to_numpy()[m.pred], truth["class"].astype(str).to_numpy()[m.truth]
        )
        out.update(_class_metrics(pred, truth, radius))
    else:
        notes.append(f"per-class metrics left out: {why}")

    if _has(truth, "context"):
        found = np.zeros(len(truth), dtype=bool)
        found[m.truth] = True
        context = truth["context"].astype(str).to_numpy()
        for ctx in list(VEHICLE_CONTEXTS) + sorted(set(context) - set(VEHICLE_CONTEXTS)):
            in_ctx = context == ctx
            out[f"vehicle_recall_{ctx}"] = float(found[in_ctx].mean()) if in_ctx.any() else None
            out[f"vehicle_truth_count_{ctx}"] = int(in_ctx.sum())
        out.update(_map_context_metrics(pred, truth, m))
    else:
        notes.append(f"per-context recall left out: {truth_name} has no 'context'")

    why = _missing("moving", pred, truth, pred_name, truth_name)
    if why is None:
        p_mov = pred["moving"].fillna(False).to_numpy(dtype=bool)
        t_mov = truth["moving"].fillna(False).to_numpy(dtype=bool)
        out["moving_accuracy"] = accuracy(p_mov[m.pred], t_mov[m.truth])
        moving_pairs = t_mov[m.truth]
        why_speed = _missing("speed_kmh", pred, truth, pred_name, truth_name)
        if why_speed is None:
            err = (pred["speed_kmh"].to_numpy(dtype=float)[m.pred] - truth["speed_kmh"].to_numpy(dtype=float)[m.truth])
            out["speed_mae_kmh"] = mae(err[moving_pairs])
            out["speed_bias_kmh"] = bias(err[moving_pairs])
        else:
            notes.append(f"speed metrics left out: {why_speed}")
        if _has(pred, "heading_deg") and _has(truth, "heading_deg"):
            both = moving_pairs & p_mov[m.pred]
            diff = angle_difference_deg(pred["heading_deg"].to_numpy(dtype=float)[m.pred][both],
                                        truth["heading_deg"].to_numpy(dtype=float)[m.truth][both])
            out["heading_mae_deg"] = mae(diff)
    else:
        notes.append(f"moving metrics left out: {why}")
    out["notes"] = notes
    return out
