"""The detect stage's entry points: a batch of Chips in, GeoDataFrames out.

- :func:`detect_buildings` takes all chips of one tile (or scene), which share
  one pixel frame, stitches the building maps in a mosaic and returns the
  buildings whose centroid lies in the chips' cores;
- :func:`detect_vehicles` runs per chip and keeps each vehicle only in the chip
  whose core holds its centre;
- :func:`keep_in_core` then trims either table to a tile's core box, so tiles
  whose halos overlap never report the same object twice.

Both return the output columns of :mod:`baseline.core.schemas` (``building_id``,
``vehicle_id`` and ``on_road`` are left NA for the orchestrator and classify).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import torch
from affine import Affine

from baseline.core.chips import Chip
from baseline.core.schemas import VEHICLES_OUT
from baseline.detect import buildings, vehicles
from baseline.detect.buildings import (
    MOSAIC_CHANNELS,
    add_chips_to_mosaic,
    buildings_from_mosaic,
    empty_buildings,
)
from baseline.detect.mosaic import BuildingMosaic
from baseline.detect.runtime import FP32, InferenceSettings
from baseline.detect.vehicles import detect_vehicles_per_chip
from baseline.detect.weights import LoadedModel
from baseline.errors import InvalidValueError


def _frame_origin(chip: Chip) -> Affine:
    return chip.transform @ Affine.translation(-chip.window.col, -chip.window.row)


def _check_same_frame(chips: Sequence[Chip]) -> None:
    o0 = _frame_origin(chips[0])
    for chip in chips[1:]:
        o = _frame_origin(chip)
        if not (math.isclose(o.c, o0.c, abs_tol=1e-3) and math.isclose(o.f, o0.f, abs_tol=1e-3)) or not math.isclose(
            chip.gsd_m, chips[0].gsd_m
        ):
            raise InvalidValueError(
                "chips for detect_buildings", chip.scene_id, "chips of one tile: same pixel frame and GSD"
            )


def input_multiple(task: str, model: LoadedModel) -> int:
    """What the ``task`` ("buildings" or "vehicles") network's input sides are padded to a multiple of."""
    return {"buildings": buildings.input_multiple, "vehicles": vehicles.input_multiple}[task](model)


def detect_buildings(
    chips: Sequence[Chip],
    model: LoadedModel,
    *,
    crs: object,
    sun_elevation_deg: float | None,
    sun_azimuth_deg: float | None,
    device: str | torch.device = "auto",
    batch_size: int = 8,
    scene_id: str | None = None,
    postprocess: dict | None = None,
    settings: InferenceSettings = FP32,
) -> gpd.GeoDataFrame:
    """Buildings (footprint, height, height source and sigma, score) seen by ``chips``.

    ``chips`` are all chips of one tile (same pixel frame); the building maps
    are stitched across them before instances are found, so a building bigger
    than a chip comes out whole as long as it lies inside the tile's window.
    The sun angles drive shadow heights; without them heights are learned.
    """
    chips = list(chips)
    if not chips:
        return empty_buildings(crs)
    _check_same_frame(chips)
    mosaic = BuildingMosaic.for_chips(chips, model.output_gsd_m, len(MOSAIC_CHANNELS))
    add_chips_to_mosaic(chips, model, mosaic, device=device, batch_size=batch_size, settings=settings,
                        sun_elevation_deg=sun_elevation_deg, sun_azimuth_deg=sun_azimuth_deg)
    pp = model.postprocess
    pp.update(postprocess or {})
    return buildings_from_mosaic(
        mosaic,
        crs=crs,
        sun_elevation_deg=sun_elevation_deg,
        sun_azimuth_deg=sun_azimuth_deg,
        scene_id=scene_id or chips[0].scene_id,
        postprocess=pp,
    )


def detect_vehicles(
    chips: Sequence[Chip],
    model: LoadedModel,
    *,
    crs: object,
    band_time_offsets_s: dict[str, float] | None,
    device: str | torch.device = "auto",
    batch_size: int = 8,
    score_threshold: float | None = None,
    settings: InferenceSettings = FP32,
) -> gpd.GeoDataFrame:
    """Vehicles seen by ``chips``, each counted once (in the chip whose core holds its centre)."""
    frames = detect_vehicles_per_chip(
        list(chips), model, crs=crs, band_time_offsets_s=band_time_offsets_s, device=device,
        batch_size=batch_size, score_threshold=score_threshold, settings=settings,
    )
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in VEHICLES_OUT if c != "geometry"}, geometry=[], crs=crs)[list(VEHICLES_OUT)]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=crs)


def keep_in_core(frame: gpd.GeoDataFrame, core: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
    """Rows whose centroid lies in ``core`` = (xmin, ymin, xmax, ymax), half-open on the max sides.

    Tiles partition the city grid, so each object is kept by exactly one tile.
    """
    if frame.empty:
        return frame
    c = shapely.centroid(frame.geometry.values)
    x, y = shapely.get_x(c), shapely.get_y(c)
    x0, y0, x1, y1 = core
    keep = (x >= x0) & (x < x1) & (y > y0) & (y <= y1)
    return frame[np.asarray(keep)].reset_index(drop=True)
