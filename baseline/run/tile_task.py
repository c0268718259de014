"""The unit of work on a Dask worker: one tile through preprocess and detect.

A task reads its tile from the scene file, runs both detectors and writes the
tile's detections (GeoParquet) and statistics (JSON) into the run's work
folder, atomically and keyed by a digest of everything that determines them.
A tile whose outputs already exist under that key is not recomputed, which is
what makes a killed run resumable and a rerun free. Models are loaded once per
worker process and kept.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np

from baseline.core.atomic import atomic_path, write_text_atomic
from baseline.core.geoparquet import read_geoparquet, write_geoparquet
from baseline.core.scene import Scene
from baseline.detect.runtime import InferenceSettings
from baseline.detect.weights import ModelRef
from baseline.errors import BaselineError
from baseline.preprocess import CityGrid, TileSpec, crop_tile, prepare_tile

log = logging.getLogger(__name__)

VALID_CELL_M = 2.0  # cell of the valid-pixel raster handed to aggregate (majority of the pixels in it)


@dataclass(frozen=True)
class TileJob:
    """Everything a worker needs for one tile; small enough to ship per task."""

    key: str
    tile: TileSpec
    scene: Scene
    cloud_scene: Scene | None
    building_grid: CityGrid
    vehicle_grid: CityGrid
    buildings_model: ModelRef
    vehicles_model: ModelRef
    models_dir: Path
    work_dir: Path
    batch_size: int
    whole_window: tuple[str, ...]  # detectors ("buildings", "vehicles") that see the whole window in one chip
    device: str
    inference: InferenceSettings
    building_score_min: float | None
    vehicle_score_min: float | None

    @property
    def folder(self) -> Path:
        return self.work_dir / "tiles" / self.tile.tile_id

    @property
    def done_marker(self) -> Path:
        return self.folder / "done.json"


@dataclass(frozen=True)
class TileResult:
    """What a finished tile reports back (its tables stay on disk)."""

    tile_id: str
    key: str
    reused: bool
    stats: dict


def finished(job: TileJob) -> TileResult | None:
    """The tile's result when its outputs exist under the job's key, else None."""
    try:
        doc = json.loads(job.done_marker.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if doc.get("key") != job.key:
        return None
    if not all((job.folder / f).is_file() for f in ("buildings.parquet", "vehicles.parquet", "valid.npy")):
        return None
    return TileResult(job.tile.tile_id, job.key, True, doc["stats"])


def _valid_cells(valid: np.ndarray, transform, core_px, gsd_m: float) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The core's validity on a coarse grid of about VALID_CELL_M cells, and (x0, y0, cell size)."""
    r0, c0, r1, c1 = core_px
    core = valid[r0:r1, c0:c1].astype(np.float32)
    step = max(1, int(round(VALID_CELL_M / gsd_m)))
    rows, cols = -(-core.shape[0] // step), -(-core.shape[1] // step)
    padded = np.full((rows * step, cols * step), np.nan, dtype=np.float32)
    padded[: core.shape[0], : core.shape[1]] = core
    frac = np.nanmean(padded.reshape(rows, step, cols, step), axis=(1, 3))
    x0, y0 = transform @ (c0, r0)
    return frac >= 0.5, (float(x0), float(y0), step * gsd_m)


def run_tile(job: TileJob) -> TileResult:
    """Preprocess and detect one tile; write its outputs; return its statistics.

    Our own errors leave the worker without the library exception they were
    raised from (``__context__``), which often cannot be unpickled and would
    turn a typed error into a bare ``Exception`` on the client.
    """
    try:
        return _run_tile(job)
    except BaselineError as exc:
        exc.__context__ = exc.__cause__ = None
        raise


def _run_tile(job: TileJob) -> TileResult:
    from baseline.detect import get_detectors  # imported here: workers load torch lazily

    done = finished(job)
    if done is not None:
        return done
    t_load = time.perf_counter()
    detectors = get_detectors(job.models_dir, job.buildings_model, job.vehicles_model, job.device, job.inference)
    t0 = time.perf_counter()  # model loading (first tile on a worker) is not preprocessing

    b_chip_px = None if "buildings" in job.whole_window else job.buildings_model.chip_px
    v_chip_px = None if "vehicles" in job.whole_window else job.vehicles_model.chip_px
    b_tile = prepare_tile(job.scene, job.building_grid, job.tile, halo_m=job.buildings_model.halo_m,
                          chip_px=b_chip_px, overlap_px=job.buildings_model.overlap_px, cloud_scene=job.cloud_scene)
    t_pre_b = time.perf_counter()
    buildings = detectors.detect_buildings(b_tile, job.scene, batch_size=job.batch_size,
                                           score_min=job.building_score_min or 0.0, crs=job.building_grid.crs)
    t_det_b = time.perf_counter()
    v_tile = None
    if job.vehicle_grid == job.building_grid:  # same pixels: cut them from the building read
        v_tile = crop_tile(b_tile, job.vehicle_grid, job.tile, halo_m=job.vehicles_model.halo_m,
                           chip_px=v_chip_px, overlap_px=job.vehicles_model.overlap_px)
    if v_tile is None:
        v_tile = prepare_tile(job.scene, job.vehicle_grid, job.tile, halo_m=job.vehicles_model.halo_m,
                              chip_px=v_chip_px, overlap_px=job.vehicles_model.overlap_px, cloud_scene=job.cloud_scene)
    t_pre_v = time.perf_counter()
    vehicles = detectors.detect_vehicles(v_tile, job.scene, batch_size=job.batch_size,
                                         score_min=job.vehicle_score_min, crs=job.vehicle_grid.crs)
    t_det_v = time.perf_counter()

    valid_mask, valid_origin = _valid_cells(v_tile.valid, v_tile.transform, v_tile.core_px, v_tile.gsd_m)
    stats = {
        "tile_id": job.tile.tile_id,
        "core": list(job.tile.core),
        **{f"core_{k}": v for k, v in v_tile.core_stats().items()},
        "buildings": len(buildings),
        "vehicles": len(vehicles),
        "valid_grid": list(valid_origin),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "inference": detectors.settings.describe(detectors.device),
        "seconds": {
            "load_models": round(t0 - t_load, 3),
            "preprocess": round((t_pre_b - t0) + (t_pre_v - t_det_b), 3),
            "detect": round((t_det_b - t_pre_b) + (t_det_v - t_pre_v), 3),
        },
    }
    job.folder.mkdir(parents=True, exist_ok=True)
    write_geoparquet(buildings, job.folder / "buildings.parquet")
    write_geoparquet(vehicles, job.folder / "vehicles.parquet")
    with atomic_path(job.folder / "valid.npy") as tmp, tmp.open("wb") as fh:
        np.save(fh, valid_mask)
    write_text_atomic(job.done_marker, json.dumps({"key": job.key, "stats": stats}))
    return TileResult(job.tile.tile_id, job.key, False, stats)


def read_tile_outputs(job: TileJob) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The buildings and vehicles a finished tile wrote."""
    return read_geoparquet(job.folder / "buildings.parquet"), read_geoparquet(job.folder / "vehicles.parquet")


def read_tile_valid(job: TileJob) -> np.ndarray:
    """The tile core's coarse validity raster (see :func:`_valid_cells`)."""
    return np.load(job.folder / "valid.npy")
