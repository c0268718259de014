"""Orchestration: from :class:`RenderParams` to pixels and truth (:func:`render_scene`).

Steps, in drawing order (each reported to ``progress``):

1. ``map``: load the city's OSM map (or a footprints file) in UTM, settle the sun;
2. ``plan``: heights, roofs, trees, fixtures, traffic (:mod:`~baseline.synth.scene_plan`);
3. ``ground``, ``trees``, ``vehicles`` (parked and queued), ``roofs``: paint the static scene;
4. ``shadows``: buildings on the ground and on lower roofs, trees, fixtures, vehicles;
5. ``sentinel-2``: area-average the static scene to 10 m, add moving vehicles per band;
6. ``motion``: moving vehicles into each VHR band at their band-time positions;
7. ``clouds``, ``sensor``: clouds and their shadows, PSF blur, noise, uint16.

The VHR grid's top-left corner is on a multiple of 10 m (the Sentinel-2 grid),
and a ``bbox`` crop is snapped outwards to 10 m, so crops line up with full
renders at 10 m; the plan is always the whole scene's, so a crop draws exactly
the same buildings and vehicles there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import geopandas as gpd
import numpy as np
import shapely
from scipy.ndimage import gaussian_filter

from baseline.core.schemas import BUILDINGS_TRUTH, ROADS_TRUTH, VEHICLES_TRUTH
from baseline.errors import RenderError
from baseline.synth import materials, paint
from baseline.synth.atmosphere import plan_clouds
from baseline.synth.geometry import largest_polygon, translate
from baseline.synth.grid import Grid
from baseline.synth.inputs import load_inputs
from baseline.synth.params import RenderParams
from baseline.synth.scene_plan import ScenePlan, plan_scene
from baseline.synth.sensors import VHR, SensorSpec
from baseline.synth.sentinel2 import average_static, render_sentinel2
from baseline.synth.shadows import (
    box_sweeps,
    roof_shadow_pieces,
    shadow_direction,
    sweep_pieces,
    tree_shadows,
)
from baseline.synth.streams import stream

ProgressFn = Callable[[str], None]
MAX_PIXELS = 60_000_000
"""Largest VHR image drawn in one piece (about 3.5 GB of working memory); 3x the Helsinki default."""
STEPS = ("map", "plan", "ground", "trees", "vehicles", "roofs", "shadows", "sentinel-2", "motion", "clouds",
         "sensor")


@dataclass(frozen=True)
class RenderResult:
    """A rendered scene in memory: pixels, grids, sun, and the truth tables.

    Attributes:
        params: what was asked.
        vhr: ``(4, rows, cols)`` uint16 reflectance x 10000 (blue, green, red, NIR); 0 outside ``valid``.
        vhr_grid, valid: its grid and valid-data mask.
        s2, s2_grid, s2_valid: Sentinel-2 ``(5, rows, cols)`` (B02, B03, B04, B08, SCL),
            or ``None`` when not asked.
        acquired_at, sun_elevation_deg, sun_azimuth_deg, sun_source: acquisition geometry.
        cloud_cover_pct, s2_cloud_cover_pct: percent of valid pixels at least half cloud.
        buildings, vehicles, roads: truth tables (columns of docs/contracts.md) for this image.
        footprint: the valid (in-image) area, in the scene's CRS.
        map_source: where the map came from.
        timings: seconds per step.
    """

    params: RenderParams
    vhr: np.ndarray
    vhr_grid: Grid
    valid: np.ndarray
    s2: np.ndarray | None
    s2_grid: Grid | None
    s2_valid: np.ndarray | None
    acquired_at: datetime
    sun_elevation_deg: float
    sun_azimuth_deg: float
    sun_source: str
    cloud_cover_pct: float
    s2_cloud_cover_pct: float
    buildings: gpd.GeoDataFrame
    vehicles: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    footprint: shapely.Geometry
    map_source: str
    timings: dict[str, float] = field(default_factory=dict)

    def scene_id(self, sensor: SensorSpec = VHR) -> str:
        """``<city>-s<seed>[-hash]-vhr`` or ``...-s2``."""
        return f"{self.params.scene_stem()}-{'vhr' if sensor is VHR else 's2'}"

    def counts(self) -> dict[str, int]:
        """Buildings and vehicles drawn, by kind."""
        v = self.vehicles
        return {
            "buildings": len(self.buildings),
            "vehicles": len(v),
            "on_road": int(v["on_road"].sum()),
            "parked": int((~v["on_road"]).sum()),
            "moving": int(v["moving"].sum()),
            "queued": int((v["context"] == "queue").sum()),
            "kerb": int((v["context"] == "kerb").sum()),
            "car_park": int((v["context"] == "car_park").sum()),
            "large": int((v["class"] == "large").sum()),
        }

    def footprint_lonlat(self) -> shapely.Geometry:
        """The image's valid footprint in WGS 84 (for STAC)."""
        return gpd.GeoSeries([self.footprint], crs=self.vhr_grid.crs).to_crs(4326).iloc[0]


def render_scene(params: RenderParams, progress: ProgressFn | None = None) -> RenderResult:
    """Render the scene ``params`` describes; nothing is written (see :func:`~baseline.synth.writer.write_scene`).

    Raises:
        UnknownCityError, InputFileError, MissingColumnError: bad map inputs.
        RenderError: a crop outside the scene, or the sun below the horizon.
    """
    clock = _Clock(progress)
    clock.step("map")
    inputs = load_inputs(params)
    clock.step("plan")
    plan = plan_scene(inputs, params)
    grid = _grid_for(plan, params)
    valid = grid.mask([plan.aoi])
    seed = params.seed
    vehicles = plan.vehicles if params.vehicles else plan.vehicles.iloc[:0]
    moving = vehicles[vehicles["moving"].to_numpy()]
    static = vehicles[~vehicles["moving"].to_numpy()]
    ux, uy, per_m = shadow_direction(plan.sun_elevation_deg, plan.sun_azimuth_deg)

    clock.step("ground")
    canvas, ground = paint.paint_ground(grid, plan, seed)
    clock.step("trees")
    crowns = paint.paint_trees(canvas, grid, plan, seed)
    clock.step("vehicles")
    static_mask = paint.paint_vehicles(canvas, [0, 1, 2, 3], grid, static, static.geometry.values)
    clock.step("roofs")
    roof_id = paint.paint_roofs(canvas, grid, plan, seed)
    fixtures = paint.paint_fixtures(canvas, grid, plan)

    clock.step("shadows")
    shade = _environment_shadows(grid, plan, roof_id, crowns, fixtures, (ux, uy, per_m))
    on_ground = roof_id == 0
    vehicle_shadow = grid.mask(box_sweeps(static.geometry.values, static["height_m"].to_numpy(), ux, uy, per_m))
    vehicle_shadow &= on_ground & ~static_mask & ~crowns & ~shade
    _darken(canvas, shade | vehicle_shadow)
    del vehicle_shadow

    s2 = s2_grid = s2_valid = None
    s2_cover = 0.0
    clouds = plan_clouds(params.clouds, plan.bounds, plan.crs, seed, plan.sun_elevation_deg, plan.sun_azimuth_deg)
    if params.sentinel2:
        clock.step("sentinel-2")
        base = average_static(canvas, grid, valid, ground == materials.GROUND_INDEX["water"])
        s2, s2_cover = render_sentinel2(base, moving, clouds, seed, (ux, uy, per_m), noise=params.sensor_noise)
        s2_grid, s2_valid = base.grid, base.valid
    del ground

    clock.step("motion")
    for band in range(4):
        dt = VHR.offset(band)
        boxes = translate(moving.geometry.values, moving["vx"].to_numpy() * dt, moving["vy"].to_numpy() * dt)
        body = paint.paint_vehicles(canvas, [band], grid, moving, boxes, shade=shade)
        cast = grid.mask(box_sweeps(boxes, moving["height_m"].to_numpy(), ux, uy, per_m))
        cast &= on_ground & ~body & ~static_mask & ~shade
        canvas[band][cast] *= materials.SHADOW_RATIO[band]
    del roof_id, static_mask, on_ground

    cover = 0.0
    if clouds is not None:
        clock.step("clouds")
        alpha = clouds.apply(canvas, grid, shaded=shade)
        cover = float((alpha[valid] >= 0.5).mean() * 100.0) if valid.any() else 0.0
        del alpha
    del shade

    clock.step("sensor")
    vhr = _sensor(canvas, valid, seed, params.sensor_noise)
    del canvas
    clock.done()

    footprint = shapely.intersection(plan.aoi, grid.box())
    return RenderResult(
        params=params, vhr=vhr, vhr_grid=grid, valid=valid, s2=s2, s2_grid=s2_grid, s2_valid=s2_valid,
        acquired_at=params.time, sun_elevation_deg=plan.sun_elevation_deg, sun_azimuth_deg=plan.sun_azimuth_deg,
        sun_source=inputs.sun_source, cloud_cover_pct=cover, s2_cloud_cover_pct=s2_cover,
        **_truth(plan, footprint, vehicles), footprint=footprint, map_source=inputs.source,
        timings=clock.timings,
    )


def _grid_for(plan: ScenePlan, params: RenderParams) -> Grid:
    """The VHR grid: the whole scene, or ``params.bbox`` snapped outwards to 10 m within it."""
    bounds = plan.bounds
    if params.bbox is not None:
        xmin, ymin, xmax, ymax = params.bbox
        snapped = (math.floor(xmin / 10) * 10.0, math.floor(ymin / 10) * 10.0,
                   math.ceil(xmax / 10) * 10.0, math.ceil(ymax / 10) * 10.0)
        inter = (max(snapped[0], bounds[0]), max(snapped[1], bounds[1]),
                 min(snapped[2], bounds[2]), min(snapped[3], bounds[3]))
        if inter[0] >= inter[2] or inter[1] >= inter[3]:
            raise RenderError(
                f"bbox {params.bbox} does not overlap the scene",
                hint=f"the scene covers {tuple(round(v, 1) for v in bounds)} in {plan.crs.to_string()}",
            )
        bounds = inter
    grid = Grid.covering(bounds, params.gsd_m, plan.crs)
    if grid.width * grid.height > MAX_PIXELS:
        raise RenderError(
            f"the scene would be {grid.width} x {grid.height} px at {params.gsd_m:g} m "
            f"({grid.width * grid.height / 1e6:.0f} Mpx, the limit is {MAX_PIXELS / 1e6:.0f} Mpx)",
            hint=f"render a part with --bbox (the scene covers {tuple(round(v) for v in bounds)}) or use a coarser --gsd",
        )
    return grid


def _environment_shadows(grid: Grid, plan: ScenePlan, roof_id: np.ndarray, crowns: np.ndarray,
                         fixtures: np.ndarray, sun: tuple[float, float, float]) -> np.ndarray:
    """Pixels out of direct sun: shadows of buildings (ground and lower roofs), trees and roof fixtures."""
    ux, uy, per_m = sun
    b = plan.buildings
    on_ground = roof_id == 0
    shade = np.zeros(grid.shape, dtype=bool)
    if len(b):
        reach = grid.box().buffer(float(b["height_m"].max()) * per_m + 1.0)
        near = b[b.intersects(reach)]
        heights = near["height_m"].to_numpy()
        pieces, _ = sweep_pieces(near.geometry.values, heights * per_m, ux, uy)
        shade |= grid.mask(pieces) & on_ground
        shade |= grid.mask(roof_shadow_pieces(near.geometry.values, heights, ux, uy, per_m))
    t = plan.trees
    if len(t):
        cast = tree_shadows(t["x"].to_numpy(), t["y"].to_numpy(), t["radius_m"].to_numpy(),
                            t["height_m"].to_numpy(), ux, uy, per_m, math.sin(math.radians(plan.sun_elevation_deg)))
        shade |= grid.mask(cast) & on_ground & ~crowns
    f = plan.fixtures
    if len(f):
        cast = box_sweeps(f.geometry.values, f["height_m"].to_numpy(), ux, uy, per_m)
        cast = shapely.intersection(cast, b.geometry.values[f["building"].to_numpy()])
        shade |= grid.mask(cast) & ~fixtures & ~on_ground
    return shade


def _darken(canvas: np.ndarray, mask: np.ndarray) -> None:
    """Apply the diffuse-light ratio of each band to the shadowed pixels."""
    for band in range(canvas.shape[0]):
        canvas[band][mask] *= materials.SHADOW_RATIO[band]


def _sensor(canvas: np.ndarray, valid: np.ndarray, seed: int, noise: bool) -> np.ndarray:
    """PSF blur, noise and quantisation to uint16 reflectance x 10000 (0 outside ``valid``)."""
    rng = stream(seed, "vhr-noise")
    out = np.empty(canvas.shape, dtype=np.uint16)
    for band in range(canvas.shape[0]):
        img = canvas[band]
        if noise:
            img = gaussian_filter(img, VHR.psf_sigma_px, mode="nearest", truncate=3.0)
            sd = np.sqrt(VHR.noise_floor**2 + VHR.noise_gain * np.clip(img, 0.0, None))
            img += sd * rng.standard_normal(img.shape, dtype=np.float32)
        out[band] = np.clip(np.rint(img * 10000.0), 1, 65535)
        out[band][~valid] = 0
    return out


def _truth(plan: ScenePlan, footprint: shapely.Geometry, vehicles: gpd.GeoDataFrame) -> dict[str, gpd.GeoDataFrame]:
    """Truth tables restricted to the image: buildings and roads clipped to it, and every vehicle
    with any part in it (whole boxes, so each drawn vehicle pixel belongs to a truth vehicle)."""
    b = plan.buildings
    geoms = shapely.intersection(b.geometry.values, footprint)
    keep = shapely.area(geoms) >= 1.0
    buildings = b.set_geometry(geoms)[keep]
    buildings = buildings.set_geometry(
        [largest_polygon(g) for g in buildings.geometry.values], crs=plan.crs
    )
    inside = shapely.intersects(footprint, vehicles.geometry.values) if len(vehicles) else np.zeros(0, dtype=bool)
    r = plan.roads
    rg = shapely.intersection(r.geometry.values, footprint)
    roads = r.set_geometry(rg)[shapely.area(rg) > 0.0]
    return {
        "buildings": buildings[list(BUILDINGS_TRUTH)].reset_index(drop=True),
        "vehicles": vehicles[inside][list(VEHICLES_TRUTH)].reset_index(drop=True),
        "roads": roads[list(ROADS_TRUTH)].reset_index(drop=True),
    }


class _Clock:
    """Times each step and reports it to the progress callback."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._name: str | None = None
        self._start = time.perf_counter()

    def step(self, name: str) -> None:
        self.done()
        self._name, self._start = name, time.perf_counter()
        if self.progress is not None:
            self.progress(name)

    def done(self) -> None:
        if self._name is not None:
            self.timings[self._name] = round(time.perf_counter() - self._start, 3)
            self._name = None
