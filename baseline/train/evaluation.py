"""Scoring a trained model on held-out labelled scenes, through the real detect path.

Each scene is cut into chips exactly as a run would (model GSD, the card's
tiling), detected with :mod:`baseline.detect`, and matched one-to-one with the
project's rules from :mod:`baseline.evaluate` (buildings IoU >= 0.5, vehicles
centres within 1.5 m). The pooled counts form the card's ``evaluation``
section in the shape aggregate reads (tp/fp/fn, per class, per context).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from baseline.classify.on_road import classify_vehicles
from baseline.context.osm import MapContext, load_osm_context
from baseline.core.geoparquet import read_geoparquet
from baseline.detect.infer import detect_buildings, detect_vehicles
from baseline.detect.weights import DEFAULT_TILING, LoadedModel
from baseline.evaluate import building_metrics, match_buildings, match_vehicles, vehicle_metrics
from baseline.evaluate.metrics import json_ready, precision_recall_f1
from baseline.evaluate.scoring import TRUTH_TO_MAP_CONTEXT, interval_coverage
from baseline.synth.inputs import city_pbf
from baseline.train.chipping import scene_chips
from baseline.train.data import LabelledScene

BUILDING_IOU = 0.5
VEHICLE_RADIUS_M = 1.5


def _tiling(model: LoadedModel) -> dict[str, Any]:
    return {**DEFAULT_TILING[model.task], **model.card.get("tiling", {})}


def _counts(tp: int, fp: int, fn: int) -> dict[str, Any]:
    p, r, f = precision_recall_f1(tp, fp, fn)
    return {"tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": p, "recall": r, "f1": f}


def _area_km2(scene: LabelledScene) -> float:
    return float(scene.valid.sum()) * scene.gsd_m * scene.gsd_m / 1e6


def predict_buildings(model: LoadedModel, scene: LabelledScene, *, device: str = "auto", batch_size: int = 8):
    """(buildings table, seconds) for a whole scene."""
    t = _tiling(model)
    t0 = time.perf_counter()
    chips = scene_chips(scene, model.gsd_m, int(t["chip_px"]), int(t["overlap_px"]))
    pred = detect_buildings(
        chips, model, crs=scene.crs, sun_elevation_deg=scene.sun_elevation_deg,
        sun_azimuth_deg=scene.sun_azimuth_deg, device=device, batch_size=batch_size,
    )
    return pred, time.perf_counter() - t0


def predict_vehicles(model: LoadedModel, scene: LabelledScene, *, device: str = "auto", batch_size: int = 8):
    """(vehicles table, seconds) for a whole scene."""
    t = _tiling(model)
    t0 = time.perf_counter()
    chips = scene_chips(scene, model.gsd_m, int(t["chip_px"]), int(t["overlap_px"]))
    pred = detect_vehicles(
        chips, model, crs=scene.crs, band_time_offsets_s=scene.band_time_offsets_s, device=device,
        batch_size=batch_size,
    )
    return pred, time.perf_counter() - t0


def evaluate_buildings_model(
    model: LoadedModel, scenes: list[LabelledScene], *, device: str = "auto", batch_size: int = 8
) -> dict[str, Any]:
    """The card's ``evaluation`` section for a building model on ``scenes``."""
    per_scene: dict[str, Any] = {}
    tp = fp = fn = 0
    errors, sources, sigmas, seconds, area = [], [], [], 0.0, 0.0
    for scene in scenes:
        truth = scene.buildings
        pred, dt = predict_buildings(model, scene, device=device, batch_size=batch_size)
        m = match_buildings(pred, truth, BUILDING_IOU)
        tp, fp, fn = tp + m.tp, fp + m.fp, fn + m.fn
        err = pred["height_m"].to_numpy(float)[m.pred] - truth["height_m"].to_numpy(float)[m.truth]
        src = pred["height_source"].to_numpy(str)[m.pred]
        errors.append(err)
        sources.append(src)
        sigmas.append(pred["height_sigma_m"].to_numpy(float)[m.pred])
        seconds += dt
        area += _area_km2(scene)
        metrics = building_metrics(pred, truth, BUILDING_IOU)
        metrics.update(
            sun_elevation_deg=scene.sun_elevation_deg, sun_azimuth_deg=scene.sun_azimuth_deg,
            height_mae_shadow_m=float(np.mean(np.abs(err[src == "shadow"]))) if (src == "shadow").any() else None,
            height_mae_learned_m=float(np.mean(np.abs(err[src == "learned"]))) if (src == "learned").any() else None,
            shadow_share=float((src == "shadow").mean()) if len(src) else None,
            seconds=round(dt, 2), km2=round(_area_km2(scene), 4),
        )
        per_scene[scene.scene_id] = json_ready(metrics)
    err = np.concatenate(errors) if errors else np.zeros(0)
    src = np.concatenate(sources) if sources else np.zeros(0, str)
    sigma = np.concatenate(sigmas) if sigmas else np.zeros(0)
    out = _counts(tp, fp, fn)
    out.update(
        iou_threshold=BUILDING_IOU,
        height_mae_m=float(np.mean(np.abs(err))) if err.size else None,
        height_bias_m=float(np.mean(err)) if err.size else None,
        height_mae_shadow_m=float(np.mean(np.abs(err[src == "shadow"]))) if (src == "shadow").any() else None,
        height_mae_learned_m=float(np.mean(np.abs(err[src == "learned"]))) if (src == "learned").any() else None,
        height_within_95_interval={
            source: interval_coverage(err[k], sigma[k])["height_within_95_interval"]
            for source, k in (("all", np.ones(len(err), bool)), ("shadow", src == "shadow"), ("learned", src == "learned"))
        },
        seconds_per_km2=round(seconds / area, 2) if area else None,
        scenes=per_scene,
    )
    return json_ready(out)


def scene_map_context(scene: LabelledScene) -> MapContext | None:
    """The map a run would place this scene's vehicles on, when the folder says which.

    A folder written by ``baseline synth`` names its city in ``render.json``
    (the renderer drew its streets, kerbs and car parks from that city's
    OpenStreetMap extract); any other labelled folder may hold its own extract
    as ``*.osm.pbf``. None when neither is there.
    """
    folder = Path(scene.path)
    render = folder / "render.json"
    pbf: Path | None = None
    if render.exists():
        city = json.loads(render.read_text()).get("params", {}).get("city")
        if city:
            pbf = city_pbf(str(city))
    if pbf is None:
        extracts = sorted(folder.glob("*.osm.pbf"))
        pbf = extracts[0] if extracts else None
    return None if pbf is None else load_osm_context(pbf, scene.crs)


def _predicted_on_road(pred: gpd.GeoDataFrame, scene: LabelledScene) -> np.ndarray | None:
    """On-road flags for predictions from the scene's carriageways (truth/roads.parquet), if any."""
    roads = Path(scene.path) / "truth" / "roads.parquet"
    if not roads.exists():
        return None
    carriageways = shapely.union_all(read_geoparquet(roads).geometry.values)
    return shapely.contains_xy(carriageways, *shapely.get_coordinates(pred.geometry.centroid).T) if len(pred) else np.zeros(0, bool)


def _predicted_places(
    pred: gpd.GeoDataFrame, scene: LabelledScene, context: MapContext | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(on-road flags, map context) of each prediction, decided as a run decides them.

    With the scene's map, :func:`classify_vehicles` gives both (carriageway,
    kerb strip, car park, heading against the road, motion); without it, only
    the on-road flag from the scene's carriageways, and no context.
    """
    if context is None:
        return _predicted_on_road(pred, scene), None
    placed = classify_vehicles(pred, context)
    return placed["on_road"].to_numpy(bool), placed["context"].astype(str).to_numpy()


def _truth_places(truth: gpd.GeoDataFrame) -> np.ndarray | None:
    """Each true vehicle's map context (lanes and queues are the road), if the labels say."""
    if "context" not in truth:
        return None
    return truth["context"].astype(str).map(lambda c: TRUTH_TO_MAP_CONTEXT.get(c, "off_road")).to_numpy()


def evaluate_vehicles_model(
    model: LoadedModel, scenes: list[LabelledScene], *, device: str = "auto", batch_size: int = 8
) -> dict[str, Any]:
    """The card's ``evaluation`` section for a vehicle model on ``scenes``.

    ``per_context`` rates match predictions and truth within each context:
    ``on_road``, ``parked`` and ``moving`` everywhere, and ``kerb`` and
    ``car_park`` where the scene's map is known (:func:`scene_map_context`);
    ``per_class_context`` splits each by class (cars and large vehicles differ
    most where they are parked), which is the rate aggregate looks up first.
    A prediction's place and on-road flag are decided as a run decides them
    (classify.on_road over the scene's map; without a map, on-road from the
    scene's carriageways), its moving flag from band timing; the truth's come
    from its labels. These are the rates aggregate's intervals rest on.
    """
    per_scene: dict[str, Any] = {}
    totals = {"all": [0, 0, 0]}
    seconds = area = 0.0
    for scene in scenes:
        truth = scene.vehicles
        pred, dt = predict_vehicles(model, scene, device=device, batch_size=batch_size)
        seconds += dt
        area += _area_km2(scene)
        m = match_vehicles(pred, truth, VEHICLE_RADIUS_M)
        _add(totals, "all", m)
        for cls in ("car", "large"):
            _add(totals, f"class:{cls}", match_vehicles(pred[pred["class"] == cls], truth[truth["class"] == cls], VEHICLE_RADIUS_M))
        t_on = truth["on_road"].to_numpy(bool) if "on_road" in truth else None
        p_on, p_place = _predicted_places(pred, scene, scene_map_context(scene))
        contexts = {"moving": (pred["moving"].fillna(False).to_numpy(bool), truth["moving"].to_numpy(bool))}
        if t_on is not None and p_on is not None:
            contexts.update(on_road=(p_on, t_on), parked=(~p_on, ~t_on))
        t_place = _truth_places(truth)
        if p_place is not None and t_place is not None:
            contexts.update({place: (p_place == place, t_place == place) for place in ("kerb", "car_park")})
        p_cls, t_cls = pred["class"].astype(str).to_numpy(), truth["class"].astype(str).to_numpy()
        for ctx, (p_in, t_in) in contexts.items():
            _add(totals, f"context:{ctx}", match_vehicles(pred[p_in], truth[t_in], VEHICLE_RADIUS_M))
            for cls in ("car", "large"):
                p_sel, t_sel = p_in & (p_cls == cls), t_in & (t_cls == cls)
                _add(totals, f"class_context:{cls}:{ctx}", match_vehicles(pred[p_sel], truth[t_sel], VEHICLE_RADIUS_M))
        scored = pred.drop(columns=["on_road"])
        if p_place is not None:
            scored = scored.assign(on_road=p_on, context=p_place)
        metrics = vehicle_metrics(scored, truth, VEHICLE_RADIUS_M)
        metrics.update(
            sun_elevation_deg=scene.sun_elevation_deg, sun_azimuth_deg=scene.sun_azimuth_deg,
            seconds=round(dt, 2), km2=round(_area_km2(scene), 4),
        )
        per_scene[scene.scene_id] = json_ready(metrics)
    out = _counts(*totals["all"])
    out["radius_m"] = VEHICLE_RADIUS_M
    out["per_class"] = {k.split(":")[1]: _counts(*v) for k, v in totals.items() if k.startswith("class:")}
    out["per_context"] = {k.split(":")[1]: _counts(*v) for k, v in totals.items() if k.startswith("context:")}
    per_class_context: dict[str, dict[str, Any]] = {}
    for key, v in totals.items():
        if key.startswith("class_context:") and sum(v):
            _, cls, ctx = key.split(":")
            per_class_context.setdefault(cls, {})[ctx] = _counts(*v)
    out["per_class_context"] = per_class_context
    out["seconds_per_km2"] = round(seconds / area, 2) if area else None
    out["scenes"] = per_scene
    return json_ready(out)


def _add(totals: dict[str, list[int]], key: str, m) -> None:
    t = totals.setdefault(key, [0, 0, 0])
    t[0] += m.tp
    t[1] += m.fp
    t[2] += m.fn
