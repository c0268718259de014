"""Both detectors behind one object, loaded once per worker process.

The run orchestrator calls :func:`get_detectors` inside each Dask task; the
models are loaded on the first call in a process and kept, keyed by models
folder, name, version and device. :class:`Detectors` takes a preprocessed tile
(its chips share the tile's pixel frame) plus the Scene (sun angles, band
timing), runs the model, and returns only what the tile's *core* owns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import torch

from baseline.core.scene import Scene
from baseline.detect.infer import detect_buildings, detect_vehicles, keep_in_core
from baseline.detect.runtime import FP32, InferenceSettings, model_on, resolve_device
from baseline.detect.weights import LoadedModel, ModelRef, load_model

if TYPE_CHECKING:
    from baseline.preprocess import PreparedTile


def tile_core_bounds(tile: PreparedTile) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the tile's core in its CRS, from ``core_px`` and ``transform``."""
    r0, c0, r1, c1 = tile.core_px
    t = tile.transform
    xa, ya = t @ (c0, r0)
    xb, yb = t @ (c1, r1)
    return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)


@dataclass
class Detectors:
    """The building and vehicle models, on one device."""

    buildings: LoadedModel
    vehicles: LoadedModel
    device: torch.device
    settings: InferenceSettings = FP32

    def detect_buildings(
        self, tile: PreparedTile, scene: Scene, *, batch_size: int = 8, score_min: float = 0.0, crs: object = None
    ) -> gpd.GeoDataFrame:
        """Buildings whose centroid lies in ``tile``'s core (maps stitched over the whole tile window)."""
        frame = detect_buildings(
            tile.chips, self.buildings, crs=crs or scene.crs, sun_elevation_deg=scene.sun_elevation_deg,
            sun_azimuth_deg=scene.sun_azimuth_deg, device=self.device, batch_size=batch_size,
            scene_id=scene.scene_id, settings=self.settings,
        )
        frame = keep_in_core(frame, tile_core_bounds(tile))
        return frame[frame["score"] >= score_min].reset_index(drop=True)

    def detect_vehicles(
        self, tile: PreparedTile, scene: Scene, *, batch_size: int = 8, score_min: float | None = None,
        crs: object = None,
    ) -> gpd.GeoDataFrame:
        """Vehicles whose centre lies in ``tile``'s core; ``score_min`` overrides the card's threshold."""
        frame = detect_vehicles(
            tile.chips, self.vehicles, crs=crs or scene.crs, band_time_offsets_s=scene.band_time_offsets_s,
            device=self.device, batch_size=batch_size, score_threshold=score_min, settings=self.settings,
        )
        return keep_in_core(frame, tile_core_bounds(tile))


_CACHE: dict[tuple, Detectors] = {}
_LOCK = threading.Lock()


def get_detectors(
    models_dir: str | Path | None, buildings: ModelRef, vehicles: ModelRef, device: str = "auto",
    settings: InferenceSettings = FP32,
) -> Detectors:
    """The process-wide :class:`Detectors` for these models, device and settings (loaded on first use)."""
    key = (str(models_dir), buildings.name, buildings.version, vehicles.name, vehicles.version, device, settings)
    with _LOCK:
        if key not in _CACHE:
            dev = resolve_device(device)
            b = load_model(buildings.name, buildings.version, models_dir)
            v = load_model(vehicles.name, vehicles.version, models_dir)
            model_on(b, dev, settings)
            model_on(v, dev, settings)
            _CACHE[key] = Detectors(b, v, dev, settings)
        return _CACHE[key]
