"""``baseline run``: every stage of DESIGN.md, in order, for one config.

ingest -> (per tile, on the Dask cluster: preprocess -> detect) -> merge ->
classify -> aggregate -> publish. Tiles are the unit of work and are cached in
``<out>/.work``; a rerun reuses finished tiles, and when every output already
matches the config and inputs it stops at once. Tables are published only
when every tile has finished, each atomically, with ``manifest.json`` last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from distributed import as_completed

from baseline import __version__
from baseline.aggregate import aggregate, load_car_parc, rates_from_cards
from baseline.aggregate.types import Capabilities, SceneQuality, ValidCoverage
from baseline.classify import classify_vehicles
from baseline.config.catalog import CityEntry, load_city
from baseline.config.schema import RunConfig
from baseline.context.osm import MapContext, load_osm_context
from baseline.core.hashing import code_digest, sha256_file
from baseline.core.scene import SENSOR_S2, SENSOR_VHR, Scene
from baseline.detect.runtime import InferenceSettings
from baseline.detect.seams import merge_tile_buildings
from baseline.detect.weights import ModelRef, default_models_dir, read_card, read_model_ref
from baseline.errors import BaselineError, ConfigError, InputFileError
from baseline.ingest.sources import AreaOfInterest, area_of_interest, open_source
from baseline.preprocess import city_grid_for, plan_tiles
from baseline.publish.run_outputs import publish_run
from baseline.run.cluster import dask_client, task_resources
from baseline.run.failures import TILE_RETRIES, TileFailure, check_failures
from baseline.run.progress import StageProgress
from baseline.run.tile_task import (
    TileJob,
    TileResult,
    read_tile_outputs,
    read_tile_valid,
    run_tile,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunSummary:
    """What a run did, for the CLI's closing lines."""

    out: Path
    skipped: bool
    tiles_total: int = 0
    tiles_reused: int = 0
    tiles_failed: list[str] = field(default_factory=list)
    buildings: int = 0
    vehicles: int = 0
    vehicles_on_road: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    area_estimates: bool = False
    moving_trucks: int | None = None


def _ensure_scene(config: RunConfig, scene_dir: Path, explicit: bool, progress: StageProgress) -> None:
    """Render the demo scene when the config says so and the folder has no imagery."""
    if (scene_dir / "vhr.json").is_file() or (scene_dir / "s2.json").is_file():
        return
    spec = config.scene.render_if_missing
    if explicit or spec is None:
        raise InputFileError(
            scene_dir, "no scene here (neither vhr.json nor s2.json)",
            hint="render one with `baseline synth --city helsinki --out DIR`, or point --scene at a scene folder",
        )
    from baseline.synth import RenderParams, render_scene, write_scene

    with progress.stage("render", f"rendering the demo scene (seed {spec.seed}) into {scene_dir}"):
        params = RenderParams(
            city=spec.city, seed=spec.seed, gsd_m=spec.gsd_m, sun_elevation_deg=spec.sun_elevation_deg,
            sun_azimuth_deg=spec.sun_azimuth_deg, clouds=spec.clouds,
            **({"time": spec.time} if spec.time is not None else {}),
        )
        write_scene(render_scene(params), scene_dir)


def _trucks_model() -> dict[str, object]:
    """The Sentinel-2 truck network's manifest entry (its weights' hash is part of the run's digest)."""
    from baseline.detect.s2_trucks import model_entry

    return model_entry()


def _moving_trucks(scene: Scene, context: MapContext, aoi: shapely.Geometry, progress: StageProgress,
                   timings: dict[str, float]) -> gpd.GeoDataFrame:
    """The ``trucks`` stage: moving trucks of a Sentinel-2 scene on the map's carriageways, inside the AOI,
    in the map's CRS (the scene read window by window)."""
    from baseline.detect.s2_trucks import trucks_table

    with progress.stage("trucks", "moving trucks in the Sentinel-2 scene, from band timing (relative traffic)") as t:
        trucks = trucks_table(scene, context.carriageways).to_crs(context.crs)
        trucks = trucks[shapely.intersects(aoi, trucks.geometry.values)].reset_index(drop=True)
    timings["trucks"] = t.seconds
    return trucks


def _surface_heights(buildings: gpd.GeoDataFrame, config: RunConfig, progress: StageProgress,
                     timings: dict[str, float]) -> gpd.GeoDataFrame:
    """The ``heights`` stage: each building's median height above ground from the config's surface model,
    wherever the model has one (``height_source`` ``dsm``); the image's height stays elsewhere."""
    from baseline.detect.surface_heights import footprint_surface_heights, fuse_surface_heights

    surface, ground = config.detect.surface_model, config.detect.ground_model
    what = f"{surface.name} minus {ground.name}" if ground is not None else surface.name
    with progress.stage("heights", f"building heights from the surface model ({what})") as t:
        measured = footprint_surface_heights(buildings, surface, ground)
        buildings = fuse_surface_heights(buildings, measured)
        found = int(np.isfinite(measured.height_m).sum())
        progress.note(f"{found} of {len(buildings)} buildings have a surface-model height")
    timings["heights"] = t.seconds
    return buildings


def _area_of_interest(config: RunConfig, city: CityEntry) -> AreaOfInterest | None:
    """The box a remote source fetches: the config's ``scene.aoi``, else the city's catalog AOI."""
    bbox = config.scene.aoi or getattr(city, "aoi_bbox", None)
    return None if bbox is None else area_of_interest(bbox, city.timezone)


def _pick_scenes(scenes: list[Scene], scene_dir: Path) -> tuple[Scene | None, Scene | None]:
    """The very-high-resolution scene the detectors read (None when there is only Sentinel-2: the area path),
    and a Sentinel-2 scene (its cloud mask, moving trucks, and the area path's pixels)."""
    vhr = [s for s in scenes if s.sensor == SENSOR_VHR]
    s2 = [s for s in scenes if s.sensor == SENSOR_S2]
    if not vhr and not s2:
        found = ", ".join(sorted({f"{s.sensor} at {s.gsd_m:g} m" for s in scenes})) or "nothing"
        raise InputFileError(
            scene_dir, f"no very-high-resolution or Sentinel-2 L2A scene among the scenes found ({found})",
            hint="buildings and vehicles as objects need imagery of 0.6 m or finer; Sentinel-2 L2A alone gives "
            "built-up area estimates per cell; Landsat and Level-1 scenes are staged and masked, but not mapped",
        )
    return (vhr[0] if vhr else None), (s2[0] if s2 else None)


def _empty_vehicles(crs: object) -> gpd.GeoDataFrame:
    """A vehicles table with the output columns (and ``context``) and no rows."""
    frame = pd.DataFrame({
        "vehicle_id": pd.array([], dtype="Int64"), "class": pd.Series([], dtype=object),
        "on_road": pd.Series([], dtype=bool), "moving": pd.Series([], dtype=bool),
        "speed_kmh": pd.Series([], dtype=float), "heading_deg": pd.Series([], dtype=float),
        "score": pd.Series([], dtype=float), "scene_id": pd.Series([], dtype=object),
        "context": pd.Series([], dtype=object),
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _run_sentinel2_only(
    config: RunConfig, s2_scene: Scene, context: MapContext, city: CityEntry, out: Path, scene_dir: Path,
    progress: StageProgress, timings: dict[str, float], t_start: float,
) -> RunSummary:
    """The area path: a city with only Sentinel-2 gets coverage, mean height and built volume per city,
    district and H3 cell as area estimates from 10 m pixels (no building or vehicle counts), and the
    moving trucks as relative traffic."""
    from baseline.aggregate.area_estimates import with_area_estimates
    from baseline.detect.buildings import empty_buildings
    from baseline.detect.s2_builtup import builtup_scene_maps
    from baseline.detect.s2_builtup import model_entry as builtup_entry

    builtup_model = builtup_entry()
    trucks_model = _trucks_model()
    run_key = _digest(config.config_hash(), str(scene_dir), s2_scene.checksum, builtup_model, trucks_model,
                      __version__, code_digest())
    if _already_complete(out, run_key):
        progress.note(f"{out} already holds this run's outputs (same config, inputs and models): nothing to do")
        return RunSummary(out=out, skipped=True)
    if s2_scene.crs != context.crs:
        raise ConfigError(f"the Sentinel-2 scene in {scene_dir} is in {s2_scene.crs}, the map context of "
                          f"{config.city!r} in {context.crs}",
                          hint="stage the scene on the city's UTM grid (remote sources do this by themselves)")
    aoi = shapely.box(*s2_scene.bounds).intersection(context.aoi)
    if aoi.is_empty:
        raise ConfigError(f"the scene in {scene_dir} does not overlap the map context of {config.city!r}",
                          hint="check the scene's location and the config's city")
    model_name = f"{builtup_model['name']}@{builtup_model['version']}"
    with progress.stage("detect", f"built-up fraction and height per 10 m pixel ({model_name}), window by window") as t:
        fraction, height, valid = builtup_scene_maps(s2_scene)
    timings["preprocess_detect"] = t.seconds
    buildings, vehicles = empty_buildings(context.crs), _empty_vehicles(context.crs)
    with progress.stage("aggregate", f"area estimates for the city and H3 cells (resolution "
                                     f"{config.aggregate.h3_resolution})") as t:
        quality = SceneQuality(
            acquired_at_utc=s2_scene.acquired_at, timezone=city.timezone, sensor=s2_scene.sensor,
            gsd_m=s2_scene.gsd_m, model=model_name, valid_fraction=float(valid.mean()) if valid.size else 0.0,
        )
        indicators = aggregate(
            buildings, vehicles, context.road_segments, aoi, context.crs,
            quality=quality, rates=rates_from_cards(None, None), city=city.name,
            car_parc=load_car_parc(config.catalog, config.city),
            h3_resolution=config.aggregate.h3_resolution,
            min_vehicles_per_cell=config.aggregate.min_vehicles_per_cell,
            min_valid_fraction=config.aggregate.min_valid_fraction,
            valid=ValidCoverage(mask=valid, transform=s2_scene.transform),
            capabilities=Capabilities.for_sensor(s2_scene.sensor, s2_scene.gsd_m),
        )
        indicators = with_area_estimates(indicators, fraction, height, valid, s2_scene.transform, s2_scene.crs,
                                         model=model_name, min_valid_fraction=config.aggregate.min_valid_fraction)
    timings["aggregate"] = t.seconds
    trucks = _moving_trucks(s2_scene, context, aoi, progress, timings)
    with progress.stage("publish", f"GeoParquet tables, manifest and report into {out}") as t:
        timings["total_before_publish"] = round(time.perf_counter() - t_start, 2)
        outputs = publish_run(
            out, config=config, run_key=run_key, buildings=buildings, vehicles=vehicles, indicators=indicators,
            context=context, aoi=aoi, scenes=[s2_scene], cards=[], timings=timings, city=city, failed_tiles=[],
            inference=[], trucks=trucks, trucks_model=trucks_model, extra_models=[builtup_model],
        )
    timings["publish"] = t.seconds
    return RunSummary(out=out, skipped=False, timings_s=timings, outputs=outputs, area_estimates=True,
                      moving_trucks=len(trucks))


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _already_complete(out: Path, run_key: str) -> bool:
    """True when the manifest says these exact outputs were made from this config and these inputs."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    extra = manifest.get("extra", {})
    if extra.get("run_digest") != run_key or extra.get("failed_tiles"):
        return False  # another run, or one that published with failed tiles: retry those
    outputs = manifest.get("outputs", {})
    return bool(outputs) and all(
        (out / name).is_file() and sha256_file(out / name) == digest for name, digest in outputs.items()
    )


def _assign_ids(frame: gpd.GeoDataFrame, id_column: str) -> gpd.GeoDataFrame:
    """Deterministic ids: rows ordered north to south, then west to east, by centroid."""
    if frame.empty:
        frame[id_column] = pd.Series(dtype="int64")
        return frame
    c = shapely.centroid(frame.geometry.values)
    order = np.lexsort((np.round(shapely.get_x(c), 2), -np.round(shapely.get_y(c), 2)))
    frame = frame.iloc[order].reset_index(drop=True)
    frame[id_column] = np.arange(1, len(frame) + 1, dtype="int64")
    return frame


def _mosaic_valid(
    jobs: list[TileJob], results: dict[str, TileResult], failed_cores: list[tuple[float, float, float, float]]
) -> tuple[np.ndarray, Affine]:
    """One coarse validity raster for the whole grid, from every finished tile's piece.

    Failed tiles have no piece; their cores stay invalid (False), and the
    raster is extended to cover them so they count as area without coverage.
    """
    origins = {j.tile.tile_id: results[j.tile.tile_id].stats["valid_grid"] for j in jobs}
    cell = next(iter(origins.values()))[2]
    pieces = {j.tile.tile_id: read_tile_valid(j) for j in jobs}
    xs = [o[0] for o in origins.values()] + [c[0] for c in failed_cores]
    ys = [o[1] for o in origins.values()] + [c[3] for c in failed_cores]
    x0, y0 = min(xs), max(ys)
    width = max([int(round((o[0] - x0) / cell)) + pieces[t].shape[1] for t, o in origins.items()]
                + [int(np.ceil((c[2] - x0) / cell)) for c in failed_cores])
    height = max([int(round((y0 - o[1]) / cell)) + pieces[t].shape[0] for t, o in origins.items()]
                 + [int(np.ceil((y0 - c[1]) / cell)) for c in failed_cores])
    mosaic = np.zeros((height, width), dtype=bool)
    for tid, (ox, oy, _) in origins.items():
        r, c = int(round((y0 - oy) / cell)), int(round((ox - x0) / cell))
        p = pieces[tid]
        mosaic[r : r + p.shape[0], c : c + p.shape[1]] = p
    return mosaic, Affine(cell, 0, x0, 0, -cell, y0)


def run_pipeline(
    config: RunConfig,
    *,
    out: Path | None = None,
    scene_dir: Path | None = None,
    models_dir: Path | None = None,
    show_progress: bool = True,
    on_tile_done: Callable[[TileResult], None] | None = None,
    context: MapContext | None = None,
) -> RunSummary:
    """Run every stage for ``config``; return what was done.

    ``context`` replaces the map context read from the city's OSM extract
    (``baseline bench`` passes the context of its tiled city).

    ``out`` and ``scene_dir`` override the config's publish folder and scene;
    ``models_dir`` the models folder (default ``$BASELINE_MODELS_DIR``, else ``models/``).
    ``on_tile_done`` is called in the client after each tile (tests use it to
    interrupt a run part-way).
    """

    out = (out or config.publish.out).resolve()
    explicit_scene = scene_dir is not None
    scene_dir = (scene_dir or config.scene.path).resolve()
    progress = StageProgress(enabled=show_progress)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    city = load_city(config.catalog, config.city)
    if config.scene.source == "local":
        _ensure_scene(config, scene_dir, explicit_scene, progress)

    with progress.stage("ingest", f"{config.scene.source} scenes into {scene_dir}") as t:
        source = open_source(config.scene, folder=scene_dir, aoi=_area_of_interest(config, city),
                             show_progress=show_progress)
        scene, s2_scene = _pick_scenes(source.scenes(), scene_dir)
        if context is None:
            context = load_osm_context(config.osm or city.osm_path())
    timings["ingest"] = t.seconds
    if scene is None:
        return _run_sentinel2_only(config, s2_scene, context, city, out, scene_dir, progress, timings, t_start)

    models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
    b_ref = read_model_ref(models_dir, config.detect.buildings_model, config.detect.buildings_version)
    v_ref = read_model_ref(models_dir, config.detect.vehicles_model, config.detect.vehicles_version)
    b_ref = ModelRef(**{**b_ref.__dict__, "chip_px": b_ref.chip_px or config.preprocess.chip_px})
    v_ref = ModelRef(**{**v_ref.__dict__, "chip_px": v_ref.chip_px or config.preprocess.chip_px})
    cards = [read_card(r.name, r.version, models_dir) for r in (b_ref, v_ref)]
    trucks_model = _trucks_model() if s2_scene is not None else None
    surfaces = [p for p in (config.detect.surface_model, config.detect.ground_model) if p is not None]
    for path in surfaces:  # before hours of detection, not after
        if not path.is_file():
            raise InputFileError(path, "surface or ground model not found",
                                 hint="fix detect.surface_model / detect.ground_model in the config, or remove them")
    surface_sums = [sha256_file(p) for p in surfaces]
    run_key = _digest(config.config_hash(), str(scene_dir), scene.checksum, s2_scene.checksum if s2_scene else None,
                      b_ref.__dict__, v_ref.__dict__, cards, trucks_model, surface_sums, __version__, code_digest())
    if _already_complete(out, run_key):
        progress.note(f"{out} already holds this run's outputs (same config, inputs and models): nothing to do")
        return RunSummary(out=out, skipped=True)

    grid_b = city_grid_for(scene, context.crs, gsd_m=b_ref.gsd_m)
    grid_v = city_grid_for(scene, context.crs, gsd_m=v_ref.gsd_m)
    tiles = plan_tiles(grid_v, config.preprocess.tile_px * scene.gsd_m)
    work = out / ".work"
    jobs = [
        TileJob(
            key=_digest(run_key, t.tile_id, t.core), tile=t, scene=scene, cloud_scene=s2_scene,
            building_grid=grid_b, vehicle_grid=grid_v, buildings_model=b_ref, vehicles_model=v_ref,
            models_dir=models_dir, work_dir=work, batch_size=config.detect.batch_size,
            whole_window=tuple(config.preprocess.whole_window), device=config.detect.device,
            inference=InferenceSettings(config.detect.precision, config.detect.channels_last,
                                        building_flips=config.detect.building_flips),
            building_score_min=config.detect.building_score_min, vehicle_score_min=config.detect.vehicle_score_min,
        )
        for t in tiles
    ]

    results: dict[str, TileResult] = {}
    failed: list[tuple[TileFailure, BaseException]] = []
    stage = progress.stage("detect", f"{len(jobs)} tiles through preprocess and detect on Dask")
    with stage as t, dask_client(config.cluster, config.detect.device) as client:
        futures = client.map(run_tile, jobs, key=[f"tile-{j.key}" for j in jobs], retries=TILE_RETRIES,
                             resources=task_resources(config.cluster, config.detect.device))
        job_of = {f.key: j for f, j in zip(futures, jobs, strict=True)}
        with progress.bar("tiles", total=len(jobs)) as advance:
            for future in as_completed(futures):
                if future.status == "error":
                    failed.append((TileFailure.from_future(future, job_of[future.key]), future.exception()))
                    log.warning("tile %s failed after %d retries: %s", failed[-1][0].tile_id, TILE_RETRIES,
                                failed[-1][0].error)
                    advance()
                    continue
                result = future.result()
                results[result.tile_id] = result
                advance()
                if on_tile_done is not None:
                    on_tile_done(result)
    failures = check_failures(failed, len(jobs), config.cluster.max_failed_fraction, work)
    jobs_done = [j for j in jobs if j.tile.tile_id in results]
    timings["preprocess_detect"] = t.seconds
    timings["preprocess_cpu"] = round(sum(r.stats["seconds"]["preprocess"] for r in results.values()), 2)
    timings["detect_cpu"] = round(sum(r.stats["seconds"]["detect"] for r in results.values()), 2)

    with progress.stage("classify", "merging tiles and deciding on-road or parked") as t:
        parts = [read_tile_outputs(j) for j in jobs_done]
        buildings = _assign_ids(merge_tile_buildings([p[0] for p in parts], context.crs), "building_id")
        vehicles = _assign_ids(
            gpd.GeoDataFrame(pd.concat([p[1] for p in parts], ignore_index=True), crs=context.crs), "vehicle_id")
        vehicles = classify_vehicles(
            vehicles, context, max_heading_difference_deg=config.classify.max_heading_difference_deg)
    timings["classify"] = t.seconds

    if config.detect.surface_model is not None:
        buildings = _surface_heights(buildings, config, progress, timings)

    with progress.stage("aggregate", f"indicators for the city and H3 cells (resolution {config.aggregate.h3_resolution})") as t:
        pixels = sum(r.stats["core_pixels"] for r in results.values()) + sum(f.core_pixels for f in failures)
        valid_px = sum(r.stats["core_valid"] for r in results.values())
        mask, mask_transform = _mosaic_valid(jobs_done, results, [f.core for f in failures])
        aoi = shapely.box(*grid_v.bounds).intersection(context.aoi)
        if aoi.is_empty:
            raise ConfigError(f"the scene in {scene_dir} does not overlap the map context of {config.city!r}",
                              hint="check the scene's location and the config's city")
        quality = SceneQuality(
            acquired_at_utc=scene.acquired_at, timezone=city.timezone, sensor=scene.sensor, gsd_m=scene.gsd_m,
            model=f"{b_ref.name}@{b_ref.version}+{v_ref.name}@{v_ref.version}",
            valid_fraction=valid_px / pixels if pixels else 0.0,
        )
        indicators = aggregate(
            buildings, vehicles, context.road_segments, aoi, context.crs,
            quality=quality, rates=rates_from_cards(*cards), city=city.name,
            car_parc=load_car_parc(config.catalog, config.city),
            h3_resolution=config.aggregate.h3_resolution,
            min_vehicles_per_cell=config.aggregate.min_vehicles_per_cell,
            min_valid_fraction=config.aggregate.min_valid_fraction,
            valid=ValidCoverage(mask=mask, transform=mask_transform),
            capabilities=Capabilities.for_sensor(scene.sensor, scene.gsd_m),
        )
    timings["aggregate"] = t.seconds

    trucks = None if s2_scene is None else _moving_trucks(s2_scene, context, aoi, progress, timings)

    with progress.stage("publish", f"GeoParquet tables, manifest and report into {out}") as t:
        timings["total_before_publish"] = round(time.perf_counter() - t_start, 2)
        outputs = publish_run(
            out, config=config, run_key=run_key, buildings=buildings, vehicles=vehicles, indicators=indicators,
            context=context, aoi=aoi, scenes=[s for s in (scene, s2_scene) if s is not None],
            cards=cards, timings=timings, city=city, failed_tiles=[f.as_dict() for f in failures],
            inference=sorted({str(r.stats["inference"]) for r in results.values() if "inference" in r.stats}),
            trucks=trucks, trucks_model=trucks_model,
        )
    timings["publish"] = t.seconds

    return RunSummary(
        out=out, skipped=False, tiles_total=len(jobs), tiles_failed=[f.tile_id for f in failures],
        tiles_reused=sum(r.reused for r in results.values()),
        buildings=len(buildings), vehicles=len(vehicles), vehicles_on_road=int(vehicles["on_road"].sum()),
        timings_s=timings, outputs=outputs, moving_trucks=None if trucks is None else len(trucks),
    )


__all__ = ["BaselineError", "RunSummary", "run_pipeline"]
