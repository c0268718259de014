"""Score a run folder, or a pair of vector files, against ground truth.

``evaluate_run`` compares a run's ``buildings.parquet`` and ``vehicles.parquet``
with a truth folder's tables of the same names, over the area both cover: the
truth's scene extent (from the scene's STAC Item beside ``truth/``, else the
truth tables' bounding box) intersected with the run's AOI (the geometry of its
``indicators_city.parquet``, when present). Objects of either side count when
their centroid lies in that area.

``evaluate_buildings`` and ``evaluate_vehicles`` compare any two vector files
(GeoParquet, GeoJSON, GeoPackage...) without clipping.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely

from baseline.core.geoparquet import read_geoparquet
from baseline.core.schemas import require_columns
from baseline.errors import InputFileError
from baseline.evaluate.inputs import align, clip_by_centre, extent_of, read_table, scene_footprint
from baseline.evaluate.metrics import json_ready
from baseline.evaluate.scoring import building_metrics, vehicle_metrics

# The keys every run evaluation has, in this order (extras follow).
RUN_KEYS = (
    "building_tp", "building_fp", "building_fn", "building_precision", "building_recall", "building_f1",
    "height_mae_m", "building_count_error",
    "vehicle_tp", "vehicle_fp", "vehicle_fn", "vehicle_precision", "vehicle_recall", "vehicle_f1",
    "on_road_accuracy", "on_road_share_error", "vehicle_count_error",
)
RUN_BUILDING_COLUMNS = ("geometry", "height_m")
RUN_VEHICLE_COLUMNS = ("geometry", "class", "on_road", "moving", "speed_kmh")


def _ordered(metrics: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    out = {key: metrics.get(key) for key in first if key in metrics}
    out.update({k: v for k, v in metrics.items() if k not in out})
    return out


def evaluate_buildings(pred_path: str | Path, truth_path: str | Path, iou: float = 0.5) -> dict[str, Any]:
    """Building scores of the footprints in ``pred_path`` against ``truth_path`` at IoU >= ``iou``.

    Height metrics are left out (with a note) when either file has no ``height_m``.
    """
    pred, truth = read_table(pred_path), read_table(truth_path)
    pred, truth, crs = align(pred, truth, pred_path, truth_path)
    metrics = building_metrics(pred, truth, iou, pred_name=str(pred_path), truth_name=str(truth_path))
    metrics.update(pred=str(pred_path), truth=str(truth_path), iou=float(iou), crs=crs.to_string())
    return json_ready(_ordered(metrics, RUN_KEYS[:8]))  # type: ignore[return-value]


def evaluate_vehicles(pred_path: str | Path, truth_path: str | Path, radius: float = 1.5) -> dict[str, Any]:
    """Vehicle scores of ``pred_path`` against ``truth_path``, centres matched within ``radius`` metres.

    On-road, class, moving and speed scores are left out (with a note) when
    either file lacks the column they need.
    """
    pred, truth = read_table(pred_path), read_table(truth_path)
    pred, truth, crs = align(pred, truth, pred_path, truth_path)
    metrics = vehicle_metrics(pred, truth, radius, pred_name=str(pred_path), truth_name=str(truth_path))
    metrics.update(pred=str(pred_path), truth=str(truth_path), radius_m=float(radius), crs=crs.to_string())
    return json_ready(_ordered(metrics, RUN_KEYS[8:]))  # type: ignore[return-value]


def _run_aoi(run_dir: Path) -> gpd.GeoSeries | None:
    path = run_dir / "indicators_city.parquet"
    if not path.is_file():
        return None
    city = read_geoparquet(path)
    return city.geometry if len(city) and city.crs is not None else None


def evaluate_run(run_dir: str | Path, truth_dir: str | Path, iou: float = 0.5, radius: float = 1.5) -> dict[str, Any]:
    """Scores of a run folder against a truth folder, as one JSON-ready mapping.

    Keys :data:`RUN_KEYS` always come first; extras follow (per-class and
    per-context scores, height RMSE and bias, speed and moving scores), then the
    inputs: ``run_dir``, ``truth_dir``, ``iou``, ``radius_m``, ``area_km2``, ``crs``.
    """
    run_dir, truth_dir = Path(run_dir), Path(truth_dir)
    for folder, what in ((run_dir, "run folder"), (truth_dir, "truth folder")):
        if not folder.is_dir():
            raise InputFileError(folder, f"{what} not found", hint="check the path")
    paths = {
        "pred_b": run_dir / "buildings.parquet", "pred_v": run_dir / "vehicles.parquet",
        "truth_b": truth_dir / "buildings.parquet", "truth_v": truth_dir / "vehicles.parquet",
    }
    frames = {key: read_geoparquet(path) for key, path in paths.items()}
    require_columns(frames["pred_b"], RUN_BUILDING_COLUMNS, str(paths["pred_b"]))
    require_columns(frames["pred_v"], RUN_VEHICLE_COLUMNS, str(paths["pred_v"]))
    require_columns(frames["truth_b"], RUN_BUILDING_COLUMNS, str(paths["truth_b"]))
    require_columns(frames["truth_v"], RUN_VEHICLE_COLUMNS, str(paths["truth_v"]))

    pred_b, truth_b, crs = align(frames["pred_b"], frames["truth_b"], paths["pred_b"], paths["truth_b"])
    pred_v, truth_v, _ = align(frames["pred_v"], frames["truth_v"], paths["pred_v"], paths["truth_v"], crs)

    area = scene_footprint(truth_dir, crs)
    if area is None:
        area = extent_of([truth_b, truth_v])
    aoi = _run_aoi(run_dir)
    if aoi is not None:
        aoi_geom = shapely.union_all(aoi.to_crs(crs).values)
        area = aoi_geom if area is None else shapely.intersection(area, aoi_geom)

    pred_b, truth_b = clip_by_centre(pred_b, area), clip_by_centre(truth_b, area)
    pred_v, truth_v = clip_by_centre(pred_v, area), clip_by_centre(truth_v, area)
    metrics = building_metrics(pred_b, truth_b, iou, pred_name=str(paths["pred_b"]), truth_name=str(paths["truth_b"]))
    v_metrics = vehicle_metrics(pred_v, truth_v, radius, pred_name=str(paths["pred_v"]), truth_name=str(paths["truth_v"]))
    notes = metrics.pop("notes") + v_metrics.pop("notes")
    metrics.update(v_metrics)
    metrics.update(
        run_dir=str(run_dir), truth_dir=str(truth_dir), iou=float(iou), radius_m=float(radius),
        area_km2=None if area is None else float(area.area) / 1e6, crs=crs.to_string(), notes=notes,
    )
    return json_ready(_ordered(metrics, RUN_KEYS))  # type: ignore[return-value]
