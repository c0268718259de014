"""What ``baseline bench`` measures, each in one run on one machine.

- **end to end**: ``baseline run`` on the bench city, in a child process so
  that the city's construction does not count; wall time from start to the
  manifest, cluster start-up and model loading included; the resident memory
  of the run's whole process tree (client and workers) sampled every 0.1 s.
  Done at the given area and at 4 times it, for ``memory_growth``; the extra
  area over the extra time of the second run is the *marginal* rate, what a
  city-sized run approaches once start-up is paid. Before the first timed
  run, one throwaway process imports what a run imports (:func:`warm_file_cache`),
  so that run is not charged for reading the libraries from a cold disk: on a
  machine's first run after a while, its start-up took 21 s more, which also
  inflated the marginal rate (the 4x run, with a warm cache, looked that much
  faster).
- **model only**: the same detectors' networks, on the same device, precision,
  layout and input shapes (an interior tile's whole window, halo included and
  padded as the pipeline pads it, one per batch; or the card's chips at the
  config's batch for a detector not in ``preprocess.whole_window``), on the same cluster
  layout (all workers at once), fed random tensors already on the device; km²
  counted as the ground area of the input tensors. This is the ceiling the
  pipeline is held against: what the halo costs counts against the pipeline.
- **naive**: the same detections (same tiles, halos and post-processing)
  computed the way a first script would: one process (torch using as many
  cores as the cluster), the model card's overlapping chips each read on its
  own with rasterio, converted on the host, the networks at batch 1 in
  PyTorch's defaults (fp32, contiguous); its time includes loading the
  models, as the end-to-end time does. Its chips overlap, so its maps differ
  from the whole-window ones near chip edges: the same buildings and
  vehicles up to those seams. The ratio is the execution's gain.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing as mp
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from baseline.bench.city import BenchCity, build_bench_city
from baseline.config.schema import RunConfig
from baseline.errors import BaselineError

log = logging.getLogger(__name__)

SAMPLE_S = 0.1
MODEL_ONLY_SECONDS = 5.0  # per model and worker, after one warm-up batch (3 s varied by 20% between runs)


@dataclass
class EndToEnd:
    """One end-to-end run of the bench city."""

    area_km2: float
    wall_s: float
    peak_rss_mb: float
    tiles: int
    timings_s: dict[str, float]

    @property
    def km2_s(self) -> float:
        return self.area_km2 / self.wall_s


@dataclass
class BenchResult:
    """Everything ``baseline bench`` measured; :meth:`summary` has the issue's keys."""

    device: str
    inference: str
    workers: int
    threads_per_worker: int
    batch_size: int
    end_to_end: EndToEnd
    end_to_end_4x: EndToEnd | None
    model_only_km2_s: float
    model_only_per_model_km2_s: dict[str, float]
    naive_km2_s: float
    naive_area_km2: float
    notes: list[str] = field(default_factory=list)

    @property
    def marginal_km2_s(self) -> float | None:
        """km²/s of the extra area of the 4x run: the rate once the cluster is up and the models loaded."""
        big = self.end_to_end_4x
        if big is None or big.wall_s <= self.end_to_end.wall_s:
            return None
        return (big.area_km2 - self.end_to_end.area_km2) / (big.wall_s - self.end_to_end.wall_s)

    def summary(self) -> dict[str, Any]:
        e2e = self.end_to_end
        growth = self.end_to_end_4x.peak_rss_mb / e2e.peak_rss_mb if self.end_to_end_4x else None
        marginal = self.marginal_km2_s
        return {
            "area_km2": round(e2e.area_km2, 4),
            "device": self.device,
            "inference": self.inference,
            "workers": self.workers,
            "threads_per_worker": self.threads_per_worker,
            "batch_size": self.batch_size,
            "end_to_end_km2_s": e2e.km2_s,
            "model_only_km2_s": self.model_only_km2_s,
            "ratio_model": e2e.km2_s / self.model_only_km2_s,
            "naive_km2_s": self.naive_km2_s,
            "vs_naive": e2e.km2_s / self.naive_km2_s,
            "peak_rss_mb": e2e.peak_rss_mb,
            "memory_growth": growth,
            "end_to_end_4x_km2_s": self.end_to_end_4x.km2_s if self.end_to_end_4x else None,
            "end_to_end_marginal_km2_s": marginal,
            "ratio_model_marginal": None if marginal is None else marginal / self.model_only_km2_s,
            "vs_naive_marginal": None if marginal is None else marginal / self.naive_km2_s,
            "peak_rss_4x_mb": self.end_to_end_4x.peak_rss_mb if self.end_to_end_4x else None,
            "model_only_per_model_km2_s": self.model_only_per_model_km2_s,
            "naive_area_km2": self.naive_area_km2,
            "end_to_end": asdict(e2e),
            "end_to_end_4x": asdict(self.end_to_end_4x) if self.end_to_end_4x else None,
            "notes": self.notes,
        }


# ---------------------------------------------------------------- end to end


def _e2e_child(config_json: str, city_json: str, out: str, result_path: str, show_progress: bool) -> None:
    """In a fresh process: the tiled city's context, then the whole pipeline; write timings as JSON."""
    from baseline.bench.city import tile_context
    from baseline.config.catalog import load_city
    from baseline.context.osm import load_osm_context
    from baseline.run.pipeline import run_pipeline

    config = RunConfig.model_validate_json(config_json)
    fields = json.loads(city_json)
    city = BenchCity(**{**fields, "scene_dir": Path(fields["scene_dir"])})
    entry = load_city(config.catalog, config.city)
    context = tile_context(load_osm_context(config.osm or entry.osm_path()), city)
    t0 = time.perf_counter()
    summary = run_pipeline(config, out=Path(out), scene_dir=city.scene_dir, show_progress=show_progress,
                           context=context)
    wall = time.perf_counter() - t0
    Path(result_path).write_text(json.dumps({"wall_s": wall, "tiles": summary.tiles_total,
                                             "timings_s": summary.timings_s}))


WARM_MODULES = ("torch", "segmentation_models_pytorch", "timm", "dask.distributed", "baseline.run.pipeline",
                "baseline.detect.infer")
"""What a run's processes import: read once before timing, so the disk's cache is warm for every run."""


def _import_modules(names: tuple[str, ...]) -> None:
    import importlib

    for name in names:
        with contextlib.suppress(ImportError):  # an optional library this install lacks
            importlib.import_module(name)


def warm_file_cache(names: tuple[str, ...] = WARM_MODULES) -> float:
    """Import ``names`` in a throwaway process (the OS then caches their files); seconds it took."""
    t0 = time.perf_counter()
    child = mp.get_context("spawn").Process(target=_import_modules, args=(names,))
    child.start()
    child.join()
    return time.perf_counter() - t0


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):  # a worker may just have ended
            total += p.memory_info().rss
    return total


def run_end_to_end(config: RunConfig, city: BenchCity, out: Path, show_progress: bool = False) -> EndToEnd:
    """``baseline run`` on ``city`` in a child process, its tree's peak resident memory sampled."""
    result = out.parent / f"{out.name}.result.json"
    result.unlink(missing_ok=True)
    city_json = json.dumps({**asdict(city), "scene_dir": str(city.scene_dir)})
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_e2e_child,
                        args=(config.model_dump_json(), city_json, str(out), str(result), show_progress))
    child.start()
    proc = psutil.Process(child.pid)
    peak = 0
    while child.is_alive():
        peak = max(peak, _tree_rss(proc))
        child.join(SAMPLE_S)
    if child.exitcode != 0 or not result.is_file():
        raise BaselineError(f"the end-to-end bench run on {city.scene_dir} failed (exit {child.exitcode})",
                            hint=f"run `baseline run` on that scene to see why; partial outputs are in {out}")
    doc = json.loads(result.read_text())
    return EndToEnd(city.area_km2, doc["wall_s"], peak / 2**20, doc["tiles"], doc["timings_s"])


# ---------------------------------------------------------------- model only


def _model_only_task(models_dir: str, refs: list[dict], device: str, precision: str, channels_last: bool,
                     batch_size: int, seconds: float) -> dict[str, float]:
    """On one worker: each network on random input already on the device; km²/s of input per model."""
    import torch

    from baseline.detect.infer import input_multiple
    from baseline.detect.runtime import InferenceSettings, forward, model_on, resolve_device
    from baseline.detect.weights import load_model

    dev = resolve_device(device)
    settings = InferenceSettings(precision, channels_last)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    rates = {}
    for ref in refs:
        model = model_on(load_model(ref["name"], ref["version"], models_dir), dev, settings)
        chip, batch = ref["chip_px"], ref.get("batch", batch_size)
        if ref.get("whole_window"):  # the size the pipeline pads an interior tile's window to
            chip += -chip % input_multiple(ref["task"], model)
        x = torch.randn(batch, model.in_channels, chip, chip, device=dev).contiguous(memory_format=fmt)
        forward(model, x, settings)  # warm-up: kernels chosen, memory pools filled
        n, t0 = 0, time.perf_counter()
        while True:
            forward(model, x, settings)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
        rates[ref["name"]] = n * batch * (chip * model.gsd_m) ** 2 / 1e6 / elapsed
    return rates


def run_model_only(config: RunConfig, refs: list[dict], models_dir: Path,
                   seconds: float = MODEL_ONLY_SECONDS) -> tuple[float, dict[str, float]]:
    """Cluster-wide km²/s of the networks alone (both models in turn, as the pipeline runs them)."""
    from baseline.run.cluster import dask_client

    with dask_client(config.cluster, config.detect.device) as client:
        workers = list(client.scheduler_info(n_workers=-1)["workers"])
        futures = [
            client.submit(_model_only_task, str(models_dir), refs, config.detect.device, config.detect.precision,
                          config.detect.channels_last, config.detect.batch_size, seconds,
                          workers=[w], allow_other_workers=False, pure=False)
            for w in workers
        ]
        per_worker = client.gather(futures)
    total = sum(1.0 / sum(1.0 / r for r in rates.values()) for rates in per_worker)
    per_model = {name: sum(r[name] for r in per_worker) for name in per_worker[0]}
    return total, per_model


# ---------------------------------------------------------------- naive loop


def run_naive(config: RunConfig, city: BenchCity, models_dir: Path, refs: list[dict], threads: int) -> float:
    """Seconds for the naive loop to compute the pipeline's detections over the whole city.

    The same tiles, halos, chips and post-processing as ``baseline run`` (so
    the same buildings and vehicles, up to numeric precision), executed the
    way a first script would: one process, every chip read on its own
    (``rasterio.open`` and a window read), converted to reflectance on the
    host, and run at batch 1 in PyTorch's defaults (fp32, contiguous).
    """
    import rasterio
    import torch
    from affine import Affine
    from rasterio.windows import Window, from_bounds

    from baseline.core.chips import Chip, ChipWindow, plan_windows
    from baseline.detect.infer import detect_buildings, detect_vehicles, keep_in_core
    from baseline.detect.runtime import UNOPTIMISED, model_on, resolve_device
    from baseline.detect.weights import load_model, read_model_ref
    from baseline.ingest import open_scene
    from baseline.preprocess import city_grid_for, plan_tiles

    torch.set_num_threads(threads)
    dev = resolve_device(config.detect.device)
    t0 = time.perf_counter()  # like the end-to-end run, loading the models counts
    scene = open_scene(city.scene_dir / "vhr.json")
    grid = city_grid_for(scene, scene.crs, gsd_m=scene.gsd_m)
    href = str(scene.href)
    models = []
    for r in refs:
        ref = read_model_ref(models_dir, r["name"], r["version"])
        models.append((model_on(load_model(r["name"], r["version"], models_dir), dev, UNOPTIMISED), ref, r["task"]))

    def read_chip(window: Window, w, chip_px: int) -> Chip:
        with rasterio.open(href) as src:  # a script opens the file for every chip
            win = Window(window.col_off + w.col, window.row_off + w.row, w.width, w.height)
            counts = src.read(window=win, boundless=True, fill_value=0)
            valid = src.dataset_mask(window=win, boundless=True) > 0
        size = max(w.height, w.width, chip_px)
        pixels = np.zeros((counts.shape[0], size, size), np.float32)
        pixels[:, : w.height, : w.width] = counts.astype(np.float32) * np.float32(scene.scale)
        mask = np.zeros((size, size), bool)
        mask[: w.height, : w.width] = valid & (counts.max(axis=0) > 0)
        pixels[:, ~mask] = 0.0
        transform = grid.transform * Affine.translation(window.col_off + w.col, window.row_off + w.row)
        return Chip(scene.scene_id, ChipWindow(w.row, w.col, w.height, w.width, w.core), pixels, mask, transform,
                    scene.gsd_m)

    for tile in plan_tiles(grid, config.preprocess.tile_px * scene.gsd_m):
        for model, ref, task in models:
            r_chip = ref.chip_px or config.preprocess.chip_px
            window = from_bounds(*tile.window_bounds(ref.halo_m, grid.bounds), transform=grid.transform)
            window = window.round_offsets().round_lengths()
            chips = [read_chip(window, w, r_chip) for w in plan_windows(int(window.height), int(window.width), r_chip,
                                                                ref.overlap_px or config.preprocess.overlap_px)]
            if task == "buildings":
                found = detect_buildings(chips, model, crs=scene.crs, sun_elevation_deg=scene.sun_elevation_deg,
                                         sun_azimuth_deg=scene.sun_azimuth_deg, device=dev, batch_size=1,
                                         settings=UNOPTIMISED)
            else:
                found = detect_vehicles(chips, model, crs=scene.crs, band_time_offsets_s=scene.band_time_offsets_s,
                                        device=dev, batch_size=1, settings=UNOPTIMISED)
            keep_in_core(found, tile.core)
    return time.perf_counter() - t0


# ---------------------------------------------------------------- all of it


def run_bench(config: RunConfig, base_scene: Path, area_km2: float, work: Path, models_dir: Path, *,
              with_4x: bool = True, model_seconds: float = MODEL_ONLY_SECONDS, progress: Any = None,
              show_progress: bool = False) -> BenchResult:
    """Every measurement for ``area_km2`` (and 4 times it), using ``work`` for cities and runs."""
    from baseline.detect.runtime import InferenceSettings, resolve_device
    from baseline.detect.weights import read_card, read_model_ref

    def step(text: str) -> None:
        if progress is not None:
            progress(text)
        log.info(text)

    refs = []
    for name, version in ((config.detect.buildings_model, config.detect.buildings_version),
                          (config.detect.vehicles_model, config.detect.vehicles_version)):
        ref = read_model_ref(models_dir, name, version)
        card = read_card(ref.name, ref.version, models_dir)
        refs.append({"name": ref.name, "version": ref.version, "chip_px": ref.chip_px or config.preprocess.chip_px,
                     "task": card.get("task", "buildings" if "building" in name else "vehicles"),
                     "halo_m": ref.halo_m, "gsd_m": ref.gsd_m})
    device = resolve_device(config.detect.device)
    inference = InferenceSettings(config.detect.precision, config.detect.channels_last).describe(device)

    step(f"building a {area_km2:g} km² city from {base_scene}")
    city = build_bench_city(base_scene, area_km2, work / "city-1x")
    tile_m = config.preprocess.tile_px * city.gsd_m
    pipeline_refs = [  # what the pipeline feeds each network: the card's chips, or one interior tile's window
        {**r, "chip_px": math.ceil((tile_m + 2 * r["halo_m"]) / r["gsd_m"]), "batch": 1, "whole_window": True}
        if r["task"] in config.preprocess.whole_window else r
        for r in refs
    ]
    step(f"warming the file cache (the libraries a run imports): {warm_file_cache():.1f} s, not timed")
    step(f"end to end on {city.area_km2:.3f} km² ({inference})")
    e2e = run_end_to_end(_for_city(config, work / "run-1x"), city, work / "run-1x", show_progress)
    e2e_4x = None
    if with_4x:
        step(f"building a {4 * area_km2:g} km² city")
        city_4x = build_bench_city(base_scene, 4 * area_km2, work / "city-4x")
        step(f"end to end on {city_4x.area_km2:.3f} km²")
        e2e_4x = run_end_to_end(_for_city(config, work / "run-4x"), city_4x, work / "run-4x", show_progress)
    step("the networks alone on random tensors")
    model_km2_s, per_model = run_model_only(config, pipeline_refs, models_dir, model_seconds)
    threads = config.cluster.n_workers * config.cluster.threads_per_worker
    step(f"naive per-chip loop on {city.area_km2:.3f} km² (one process, {threads} torch threads)")
    naive_s = run_naive(config, city, models_dir, refs, threads)
    return BenchResult(
        device=device.type, inference=inference, workers=config.cluster.n_workers,
        threads_per_worker=config.cluster.threads_per_worker, batch_size=config.detect.batch_size,
        end_to_end=e2e, end_to_end_4x=e2e_4x, model_only_km2_s=model_km2_s, model_only_per_model_km2_s=per_model,
        naive_km2_s=city.area_km2 / naive_s, naive_area_km2=city.area_km2,
    )


def _for_city(config: RunConfig, out: Path) -> RunConfig:
    """The bench config pointed at a fresh run folder."""
    if out.exists():
        shutil.rmtree(out)
    return config.model_copy(update={"publish": config.publish.model_copy(update={"out": out, "pdf": False})})
