"""Choosing the building post-processing thresholds on *training* scenes.

The network's maps are computed once per scene crop; instance separation and
heights are then rerun for each candidate boundary threshold, minimum seed
size (seeds smaller than it merge into their neighbours, which removes the
fragments that roof fixtures and roof shadows cut out) and seed split (stricter
thresholds that divide a seed holding two parts at least a given size: the
faint walls of terraced houses), and the setting with
the best F1 (IoU >= 0.5) is written into the card, with the median bias of
the measured shadow lengths (a length, so it converts to height with each
scene's own sun elevation), and the floor that makes shadow heights' sigmas
cover 95% of their errors (a floor added in quadrature). Held-out scenes are never used here, so their
scores stay honest.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from baseline.detect.buildings import MOSAIC_CHANNELS, add_chips_to_mosaic, buildings_from_mosaic
from baseline.detect.mosaic import BuildingMosaic
from baseline.detect.shadows import MAX_RAY_INCIDENCE_DEG
from baseline.detect.weights import DEFAULT_TILING, LoadedModel
from baseline.evaluate import match_buildings
from baseline.train.chipping import scene_chips
from baseline.train.data import LabelledScene, crop_scene

log = logging.getLogger(__name__)

BOUNDARY_THRESHOLDS = (0.5, 0.35)
MIN_SEEDS_M2 = (1.5, 15.0, 30.0, 50.0, 80.0)
SPLIT_THRESHOLDS = (0.3, 0.2, 0.1)
MIN_SPLITS_M2 = (None, 170.0, 230.0, 350.0)  # None: seeds are never split
MIN_SHADOW_RAYS = (2, 3, 5, 8)
HEIGHT_SEEDS_M2 = (1.5, 30.0, 80.0)
SHADOW_QUANTILES = (0.5, 0.65)
ROOF_SHADOW_DARKNESS = (0.3, 0.4, 0.5, 0.6)
LEARNED_AREA_BINS_M2 = (30.0, 60.0, 120.0)  # upper edges of the footprint-size classes of learned heights
MIN_BIN_COUNT = 5


def central_crop(scene: LabelledScene, size_m: float = 700.0) -> LabelledScene:
    """The central ``size_m`` square of a scene (dense blocks in a city render)."""
    rows, cols = scene.valid.shape
    n = int(size_m / scene.gsd_m)
    h, w = min(n, rows), min(n, cols)
    return crop_scene(scene, (rows - h) // 2, (cols - w) // 2, h, w)


def scene_mosaics(
    model: LoadedModel, scenes: list[LabelledScene], *, device: str = "auto"
) -> Iterator[tuple[LabelledScene, BuildingMosaic]]:
    """Each scene with the network's stitched building maps over it (chips as the card tiles them)."""
    tiling = {**DEFAULT_TILING["buildings"], **model.card.get("tiling", {})}
    for scene in scenes:
        chips = scene_chips(scene, model.gsd_m, int(tiling["chip_px"]), int(tiling["overlap_px"]))
        mosaic = BuildingMosaic.for_chips(chips, model.output_gsd_m, len(MOSAIC_CHANNELS))
        add_chips_to_mosaic(chips, model, mosaic, device=device, sun_elevation_deg=scene.sun_elevation_deg,
                            sun_azimuth_deg=scene.sun_azimuth_deg)
        yield scene, mosaic


def _matched(scene: LabelledScene, mosaic: BuildingMosaic, postprocess: dict[str, Any]) -> tuple[Any, Any]:
    """(footprints from ``mosaic`` with ``postprocess``, their matches to the scene's truth at IoU 0.5)."""
    pred = buildings_from_mosaic(
        mosaic, crs=scene.crs, sun_elevation_deg=scene.sun_elevation_deg,
        sun_azimuth_deg=scene.sun_azimuth_deg, scene_id=scene.scene_id, postprocess=postprocess,
    )
    return pred, match_buildings(pred, scene.buildings, 0.5)


def tune_building_postprocess(
    model: LoadedModel, scenes: list[LabelledScene], *, device: str = "auto"
) -> tuple[dict[str, Any], dict[str, float]]:
    """(postprocess with the best boundary threshold, seed size and split, F1 per setting) on ``scenes``."""
    mosaics = list(scene_mosaics(model, scenes, device=device))
    scores: dict[str, float] = {}
    residuals: dict[str, np.ndarray] = {}
    settings: dict[str, dict[str, Any]] = {}
    # what this tuning derives is left out of its starting point, so a rescore gives the same card twice
    derived = ("split_thresholds", "min_split_m2", "learned_height_offsets_by_area")
    base = {k: v for k, v in model.postprocess.items() if k not in derived}
    for threshold, seed_m2, split_m2 in itertools.product(BOUNDARY_THRESHOLDS, MIN_SEEDS_M2, MIN_SPLITS_M2):
        tp = n_pred = n_truth = 0
        setting: dict[str, Any] = {"boundary_threshold": threshold, "min_seed_m2": seed_m2}
        key = f"boundary {threshold}, seed {seed_m2} m2"
        if split_m2 is not None:
            setting.update(split_thresholds=list(SPLIT_THRESHOLDS), min_split_m2=split_m2)
            key += f", split at {'/'.join(map(str, SPLIT_THRESHOLDS))} into parts >= {split_m2} m2"
        pp = dict(base, **setting, shadow_length_offset_m=0.0)
        found = []
        for scene, mosaic in mosaics:
            pred, m = _matched(scene, mosaic, pp)
            tp, n_pred, n_truth = tp + m.tp, n_pred + m.n_pred, n_truth + m.n_truth
            if scene.sun_elevation_deg is not None:
                shadow = pred["height_source"].to_numpy()[m.pred] == "shadow"
                tan_e = math.tan(math.radians(scene.sun_elevation_deg))
                dh = scene.buildings["height_m"].to_numpy(float)[m.truth] - pred["height_m"].to_numpy(float)[m.pred]
                found.append(dh[shadow] / tan_e)
        scores[key] = round(2 * tp / max(n_pred + n_truth, 1), 4)
        residuals[key] = np.concatenate(found) if found else np.zeros(0)
        settings[key] = setting
        log.info("%s: F1 %.3f on training crops", key, scores[key])
    best = max(settings, key=lambda k: scores[k])
    # a constant bias in measured shadow length (edges of the predicted masks), in metres
    offset = float(np.median(residuals[best])) if residuals[best].size >= 10 else 0.0
    tuned = dict(base, **settings[best], shadow_length_offset_m=round(offset, 3))
    # recorded in the card, so a later change of the code's default does not silently change this model
    tuned.setdefault("shadow_max_incidence_deg", MAX_RAY_INCIDENCE_DEG)
    # the finer split that measures heights, how few uncensored rays still beat the
    # learned fallback, and that fallback's typical error: by height MAE
    best_mae, learned_mae = np.inf, None
    for rays, height_seed, q in itertools.product(MIN_SHADOW_RAYS, HEIGHT_SEEDS_M2, SHADOW_QUANTILES):
        if height_seed > tuned["min_seed_m2"]:
            continue
        mae, learned = _height_maes(mosaics, dict(tuned, min_shadow_rays=rays, height_seed_m2=height_seed, shadow_quantile=q))
        scores[f"rays >= {rays}, height seed {height_seed} m2, quantile {q}: height MAE"] = (
            round(mae, 3) if np.isfinite(mae) else None
        )
        if mae < best_mae or "height_seed_m2" not in tuned:
            best_mae, learned_mae = mae, learned
            tuned.update(min_shadow_rays=rays, height_seed_m2=height_seed, shadow_quantile=q)
    # how much darker than its sunlit part a neighbour's roof must be to count as this
    # building's shadow on it (chained heights), with the rest fixed
    for darkness in ROOF_SHADOW_DARKNESS:
        mae, learned = _height_maes(mosaics, dict(tuned, roof_shadow_darkness=darkness))
        scores[f"roof shadow darkness {darkness}: height MAE"] = round(mae, 3) if np.isfinite(mae) else None
        if mae < best_mae:
            best_mae, learned_mae = mae, learned
            tuned["roof_shadow_darkness"] = darkness
    if learned_mae is not None:
        tuned["learned_height_sigma_m"] = round(1.25 * learned_mae, 2)  # MAE -> sigma for a Gaussian
    floor, coverage = shadow_sigma_floor(mosaics, tuned)
    if floor is not None:
        tuned["shadow_sigma_floor_m"] = floor
        scores["shadow heights within 1.96 sigma, before / after the floor"] = coverage
    return tuned, scores


def _height_maes(
    mosaics: list[tuple[LabelledScene, BuildingMosaic]], postprocess: dict[str, Any]
) -> tuple[float, float | None]:
    """(height MAE of every matched footprint, of those with learned heights; None without any) over ``mosaics``."""
    errors, learned = [], []
    for scene, mosaic in mosaics:
        pred, m = _matched(scene, mosaic, postprocess)
        err = pred["height_m"].to_numpy(float)[m.pred] - scene.buildings["height_m"].to_numpy(float)[m.truth]
        errors.append(err)
        learned.append(err[pred["height_source"].to_numpy()[m.pred] == "learned"])
    every = np.concatenate(errors) if errors else np.zeros(0)
    fallback = np.concatenate(learned) if learned else np.zeros(0)
    mae = float(np.mean(np.abs(every))) if every.size else np.inf
    return mae, (float(np.mean(np.abs(fallback))) if fallback.size else None)


def shadow_sigma_floor(
    mosaics: list[tuple[LabelledScene, BuildingMosaic]], postprocess: dict[str, Any], coverage: float = 0.95
) -> tuple[float | None, list[float]]:
    """The error every shadow height shares, as a sigma added in quadrature to its rays' spread.

    A shadow height's sigma is the spread of its rays, which misses what all
    rays share (the predicted shadow's edges, a ray cut short): when the rays
    agree it can be a few centimetres while the height is a metre off. The
    floor is the smallest sigma that, added in quadrature, puts ``coverage``
    of the errors within 1.96 sigma on the training crops (never the held-out
    scenes); None with fewer than 20 matched shadow heights. Returns
    (floor in metres, [coverage before, coverage after]).
    """
    errors, sigmas = [], []
    for scene, mosaic in mosaics:
        pred, m = _matched(scene, mosaic, dict(postprocess, shadow_sigma_floor_m=0.0))
        shadow = pred["height_source"].to_numpy()[m.pred] == "shadow"
        err = pred["height_m"].to_numpy(float)[m.pred] - scene.buildings["height_m"].to_numpy(float)[m.truth]
        sigma = pred["height_sigma_m"].to_numpy(float)[m.pred]
        ok = shadow & np.isfinite(err) & np.isfinite(sigma)
        errors.append(err[ok])
        sigmas.append(sigma[ok])
    err = np.concatenate(errors) if errors else np.zeros(0)
    sigma = np.concatenate(sigmas) if sigmas else np.zeros(0)
    floor = sigma_floor(err, sigma, coverage)
    if floor is None:
        return None, []
    before = float(np.mean(np.abs(err) <= 1.96 * sigma))
    after = float(np.mean(np.abs(err) <= 1.96 * np.hypot(sigma, floor)))
    log.info("shadow sigma floor %.2f m: %.3f -> %.3f of errors within 1.96 sigma on training crops",
             floor, before, after)
    return floor, [round(before, 3), round(after, 3)]


def sigma_floor(err: np.ndarray, sigma: np.ndarray, coverage: float = 0.95, min_count: int = 20) -> float | None:
    """Smallest ``f`` (cm steps, rounded up) with ``coverage`` of |err| <= 1.96 hypot(sigma, f); None if too few."""
    err, sigma = np.asarray(err, float), np.asarray(sigma, float)
    ok = np.isfinite(err) & np.isfinite(sigma)
    err, sigma = np.abs(err[ok]), np.maximum(sigma[ok], 0.0)
    if err.size < min_count:
        return None

    def covered(f: float) -> float:
        return float(np.mean(err <= 1.96 * np.hypot(sigma, f)))

    if covered(0.0) >= coverage:
        return 0.0
    lo, hi = 0.0, max(float(err.max()) / 1.96, 0.01)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if covered(mid) >= coverage else (mid, hi)
    return math.ceil(hi * 100) / 100


def learned_height_offsets(
    model: LoadedModel, scenes: list[LabelledScene], postprocess: dict[str, Any], *, device: str = "auto"
) -> tuple[list[list[float]], dict[str, Any]]:
    """Offsets that take the learned-height head's bias out of small footprints, by size class.

    The learned head regresses to the typical building height: footprints under
    30 m² (kiosks, shelters, sheds of 3-5 m) come out at about 15 m wherever no
    shadow can be measured. On ``scenes`` (whole training scenes: small
    buildings are too few in the dense crops the other settings are tuned on),
    the median of (true - learned) height per class of
    :data:`LEARNED_AREA_BINS_M2` with at least :data:`MIN_BIN_COUNT` matched
    footprints becomes that class's offset. Returns ([[upper area m², offset
    m], ...], a record for the card).
    """
    areas, residuals = [], []
    pp = {k: v for k, v in postprocess.items() if k != "learned_height_offsets_by_area"}
    for scene, mosaic in scene_mosaics(model, scenes, device=device):  # one whole scene's maps at a time
        pred, m = _matched(scene, mosaic, pp)
        learned = pred["height_source"].to_numpy()[m.pred] == "learned"
        areas.append(pred.geometry.area.to_numpy()[m.pred][learned])
        residuals.append(scene.buildings["height_m"].to_numpy(float)[m.truth][learned]
                         - pred["height_m"].to_numpy(float)[m.pred][learned])
    area = np.concatenate(areas) if areas else np.zeros(0)
    residual = np.concatenate(residuals) if residuals else np.zeros(0)
    return size_class_offsets(area, residual)


def size_class_offsets(
    area_m2: np.ndarray, residual_m: np.ndarray, bins: tuple[float, ...] = LEARNED_AREA_BINS_M2,
    min_count: int = MIN_BIN_COUNT,
) -> tuple[list[list[float]], dict[str, Any]]:
    """([[upper area, median residual], ...] for classes with ``min_count`` or more finite residuals, a record)."""
    offsets, record = [], {}
    lower = 0.0
    for upper in bins:
        inside = (area_m2 >= lower) & (area_m2 < upper) & np.isfinite(residual_m)
        n = int(inside.sum())
        offset = round(float(np.median(residual_m[inside])), 2) if n >= min_count else None
        record[f"learned heights of footprints {lower:g}-{upper:g} m2: n, median true - learned (m)"] = [n, offset]
        if offset is not None:
            offsets.append([upper, offset])
            log.info("learned heights of footprints %g-%g m2: %d matched, offset %+.2f m", lower, upper, n, offset)
        lower = upper
    return offsets, record
