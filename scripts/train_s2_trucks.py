"""Train the Sentinel-2 truck pixel classifier (``models/s2-trucks/<version>``) on the project's renders.

Usage::

    .venv/bin/python scripts/train_s2_trucks.py [--seeds 1000-1079] [--steps 15000] [--centre] [--out models/s2-trucks/1.1.0]

Training data: Sentinel-2 renders (``baseline.synth``, VHR at 1 m for speed:
the 10 m image does not depend on it) of central Helsinki with seeds 1000-1079
and a random sun, never the seeds the scores are reported on (2025-2031) nor
the tuning seeds (7, 101-105). The city's own moving trucks drive at 20-45
km/h; to teach other speeds, about a dozen extra trucks per scene are drawn
onto carriageways by the renderer's own per-band drawing
(``baseline.synth.sentinel2._moving_vehicles``) at 10-170 km/h. Besides the
city, 120 corridor scenes (:mod:`baseline.synth.corridor`, seeds 5000-5119:
motorways, trunk and primary roads through fields, trucks at motorway speeds
and in congestion, drawn per band by the same function) teach the rainbows
of fast trucks and rural backgrounds; corridor seeds 8000-8009 tune the
thresholds and 9000-9029 are scored. And 60 open-country scenes drawn in numpy
(:func:`open_country`: fields, one to three straight roads of 7-25 m, trucks
of 8-18 m at 10-170 km/h and cars, each drawn per band where it was at that
band's time, blurred and noised like the MSI) show clean, isolated rainbows. Targets: for every moving
large vehicle whose paint stands out from asphalt (dark ones get none), the
fraction of each 10 m pixel it covers (mean of its B02-, B03- and B04-time
boxes, drawn at 1 m), its B02 -> B04 and B02 -> B03 displacement in pixels,
and (auxiliary) the moving cars' coverage. Every scene is used with its road
mask and without one, with flips and quarter turns (the band timing and the
displacement targets turn with the image).

The shipped 1.1.0 was trained with ``--centre --steps 12000`` (about 8 minutes
of rendering and 14 of training on 2 CPU cores): a seventh output, a heatmap
peaked at each visible truck's centre at the copies' mean time, trained with
CenterNet's focal loss (:func:`centre_focal_loss`). 1.0.0 had no centre head.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import torch
from rasterio.features import rasterize
from safetensors.torch import save_file
from scipy.ndimage import binary_dilation, gaussian_filter
from torch.nn import functional as F

from baseline.detect.s2_trucks import (
    CENTRE_CHANNEL,
    CENTRE_OUTPUT,
    MODEL_NAME,
    MODEL_VERSION,
    N_FEATURES,
    OUTPUTS,
    TruckNet,
    input_features,
)
from baseline.synth import RenderParams, materials, render_scene
from baseline.synth.corridor import CorridorParams, render_corridor
from baseline.synth.geometry import oriented_boxes, translate
from baseline.synth.grid import Grid
from baseline.synth.inputs import load_inputs
from baseline.synth.scene_plan import plan_scene
from baseline.synth.seeds import seed_list_arg, seed_list_text
from baseline.synth.sensors import SENTINEL2
from baseline.synth.sentinel2 import _moving_vehicles
from baseline.synth.shadows import shadow_direction

ROOT = Path(__file__).resolve().parents[1]
COPY_BANDS = ("B02", "B03", "B04")
FINE_M = 1.0
DISP_WEIGHT = 0.2
DILATIONS = (1, 1, 2, 2, 1)
IGNORE_CHANNEL = CENTRE_CHANNEL + 1
"""Target channel that is 1 around moving trucks too dark to be targets: with ``--dark ignore`` the coverage
and centre losses skip those pixels (a detection there would be a true truck, so it is not taught away)."""
N_TARGETS = IGNORE_CHANNEL + 1
DARK_MODES = ("negative", "ignore")
CENTRE_SIGMA_PX = 0.6
"""Spread of the centre heatmap's Gaussians (10 m pixels): narrow enough that trucks two pixels apart keep
two peaks."""
CENTRE_WEIGHT = 1.0


def add_centre(heat: np.ndarray, row: float, col: float, sigma: float = CENTRE_SIGMA_PX) -> None:
    """Paint a truck's centre on ``heat`` (in place, keeping the larger value): a Gaussian over pixel
    centres around fractional ``(row, col)`` (0 = top-left edge), and 1 on the pixel holding it (the
    positive of the focal loss)."""
    h, w = heat.shape
    ri, ci = int(np.floor(row)), int(np.floor(col))
    reach = int(np.ceil(3 * sigma))
    r0, r1, c0, c1 = max(ri - reach, 0), min(ri + reach + 1, h), max(ci - reach, 0), min(ci + reach + 1, w)
    if r0 >= r1 or c0 >= c1:
        return
    rr, cc = np.mgrid[r0:r1, c0:c1] + 0.5
    g = np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / (2 * sigma**2)).astype(np.float32)
    heat[r0:r1, c0:c1] = np.maximum(heat[r0:r1, c0:c1], g)
    if 0 <= ri < h and 0 <= ci < w:
        heat[ri, ci] = 1.0


def ignore_around(cover: np.ndarray) -> np.ndarray:
    """1 on the pixels a dark truck's copies touch and their 8 neighbours (where its centre heatmap
    would reach), else 0: the ``IGNORE_CHANNEL`` target."""
    return binary_dilation(cover > 0.005, structure=np.ones((3, 3), dtype=bool)).astype(np.float32)


def targets(grid: Grid, boxes: np.ndarray, vx: np.ndarray, vy: np.ndarray, visible: np.ndarray,
            cars: gpd.GeoDataFrame) -> np.ndarray:
    """(N_TARGETS, h, w): the visible trucks' mean coverage of their B02/B03/B04-time copies, and at
    each pixel the B02 -> B04 and B02 -> B03 displacement (rows, cols; pixels) of the truck covering it
    most; the moving cars' mean coverage (the auxiliary output); the centre heatmap of the visible
    trucks at the copies' mean time (:func:`add_centre`); and where the dark trucks are
    (:func:`ignore_around`).

    Dark trucks (``visible`` False) get no target: at 10 m they leave almost no signature, and
    asking the network to find them would teach it to fire on faint clutter. Whether their pixels
    count as background or are left out of the loss is the training's ``--dark`` choice.
    """
    k = int(round(grid.gsd / FINE_M))
    fine = Grid(grid.x0, grid.y0, FINE_M, grid.width * k, grid.height * k, grid.crs)
    t = {band: SENTINEL2.time_offsets_s[band] for band in COPY_BANDS}
    out = np.zeros((N_TARGETS, *grid.shape), dtype=np.float32)
    best = np.zeros(grid.shape, dtype=np.float32)
    t_mean = float(np.mean([t[band] for band in COPY_BANDS]))
    speed = cars["speed_kmh"].to_numpy() / 3.6
    head = np.radians(cars["heading_deg"].to_numpy())
    for band in COPY_BANDS:
        moved = translate(cars.geometry.values, speed * np.sin(head) * t[band], speed * np.cos(head) * t[band])
        mask = fine.mask(moved).astype(np.float32)
        out[5] += mask.reshape(grid.height, k, grid.width, k).mean(axis=(1, 3)) / len(COPY_BANDS)
    dark = np.zeros(grid.shape, dtype=np.float32)
    for i in range(len(boxes)):
        cover = np.zeros(grid.shape, dtype=np.float32)
        for band in COPY_BANDS:
            mask = fine.mask(translate(boxes[i : i + 1], vx[i] * t[band], vy[i] * t[band])).astype(np.float32)
            cover += mask.reshape(grid.height, k, grid.width, k).mean(axis=(1, 3)) / len(COPY_BANDS)
        if not visible[i]:
            dark += cover
            continue
        out[0] += cover
        mine = cover > best
        best = np.maximum(best, cover)
        for j, (t0, t1) in enumerate(((t["B02"], t["B04"]), (t["B02"], t["B03"]))):
            # (rows, cols): rows grow southwards
            out[1 + 2 * j][mine] = -vy[i] * (t1 - t0) / grid.gsd
            out[2 + 2 * j][mine] = vx[i] * (t1 - t0) / grid.gsd
        centroid = shapely.centroid(boxes[i])
        add_centre(out[CENTRE_CHANNEL], (grid.y0 - (centroid.y + vy[i] * t_mean)) / grid.gsd,
                   (centroid.x + vx[i] * t_mean - grid.x0) / grid.gsd)
    out[0] = np.clip(out[0], 0.0, 1.0)
    out[IGNORE_CHANNEL] = ignore_around(dark)
    return out


def extra_trucks(roads: gpd.GeoDataFrame, rng: np.random.Generator, n: int, crs: object) -> gpd.GeoDataFrame:
    """``n`` moving trucks on random carriageways, along the road, at 10-170 km/h, renderer colours."""
    polys = roads.geometry.values
    area = shapely.area(polys)
    pick = rng.choice(len(polys), size=n * 4, p=area / area.sum())
    xs, ys, heads = [], [], []
    for i in pick:
        xmin, ymin, xmax, ymax = polys[i].bounds
        px = rng.uniform(xmin, xmax, 64)
        py = rng.uniform(ymin, ymax, 64)
        inside = shapely.contains_xy(polys[i], px, py)
        if inside.any():
            j = int(np.flatnonzero(inside)[0])
            xs.append(px[j])
            ys.append(py[j])
            heads.append((float(roads["bearing_deg"].iloc[i]) + (180.0 if rng.random() < 0.5 else 0.0)) % 360.0)
        if len(xs) == n:
            break
    m = len(xs)
    speed = rng.uniform(10.0, 170.0, m) / 3.6
    length = rng.uniform(8.0, 18.0, m)
    h = np.radians(heads)
    colour = rng.choice(len(materials.VEHICLE_COLOURS), size=m, p=materials.VEHICLE_COLOUR_WEIGHTS)
    colour = np.where(rng.random(m) < 0.5, 0, colour)
    return gpd.GeoDataFrame(
        {"vx": speed * np.sin(h), "vy": speed * np.cos(h), "colour": colour.astype("int64"),
         "height_m": rng.uniform(3.0, 4.0, m)},
        geometry=oriented_boxes(np.array(xs), np.array(ys), np.array(heads), length, np.full(m, 2.5)), crs=crs,
    )


def scene_sample(seed: int, rng: np.random.Generator, inject: int,
                 contrast: float = 0.1) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render one training scene; (features, targets) with and without the road mask."""
    params = RenderParams(city="helsinki", seed=seed, gsd_m=1.0, sun_elevation_deg=float(rng.uniform(25, 55)),
                          sun_azimuth_deg=float(rng.uniform(100, 260)))
    result = render_scene(params)
    grid = result.s2_grid
    refl = result.s2[:4].astype(np.float32) * 1e-4
    valid = result.s2_valid
    v = result.vehicles
    mt = v[(v["class"] == "large").to_numpy() & v["moving"].to_numpy()]
    plan = plan_scene(load_inputs(params), params).vehicles.set_index("vehicle_id")
    visible = materials.stands_out_from_asphalt(plan.loc[mt["vehicle_id"].to_numpy(), "colour"].to_numpy(), contrast)
    speed = mt["speed_kmh"].to_numpy() / 3.6
    head = np.radians(mt["heading_deg"].to_numpy())
    boxes, vx, vy = mt.geometry.values, speed * np.sin(head), speed * np.cos(head)
    if inject and len(result.roads):
        extra = extra_trucks(result.roads, rng, inject, grid.crs)
        sun = shadow_direction(result.sun_elevation_deg, result.sun_azimuth_deg)
        delta = _moving_vehicles(grid, extra, sun)
        for b in range(4):
            refl[b] += gaussian_filter(delta[b], SENTINEL2.psf_sigma_px, mode="nearest")
        refl[:, ~valid] = 0.0
        boxes = np.concatenate([boxes, extra.geometry.values])
        vx = np.concatenate([vx, extra["vx"].to_numpy()])
        vy = np.concatenate([vy, extra["vy"].to_numpy()])
        visible = np.concatenate([visible, materials.stands_out_from_asphalt(extra["colour"].to_numpy(), contrast)])
    cars = v[(v["class"] == "car").to_numpy() & v["moving"].to_numpy()]
    target = targets(grid, boxes, vx, vy, visible, cars)
    road = rasterize(((g, 1) for g in result.roads.geometry.values), out_shape=grid.shape,
                     transform=grid.transform, fill=0, all_touched=True).astype(bool)
    return [(input_features(refl, valid, road), target), (input_features(refl, valid, None), target)]


# --- open-country scenes: motorways and roads through fields, drawn in numpy ----------------------

FIELD_MATERIALS = np.array([
    materials.GROUND["grass"], (0.03, 0.07, 0.04, 0.45), (0.02, 0.04, 0.025, 0.30),   # grass, crop, forest
    (0.08, 0.11, 0.15, 0.24), (0.10, 0.13, 0.17, 0.27),                               # bare soil
    (0.15, 0.16, 0.17, 0.20), (0.28, 0.29, 0.30, 0.33), (0.06, 0.065, 0.07, 0.09),    # roofs, car parks
    materials.GROUND["water"],
], dtype=np.float32)
FIELD_WEIGHTS = np.array([0.2, 0.2, 0.12, 0.12, 0.1, 0.1, 0.06, 0.06, 0.04])
OPEN_SIZE = 96


def box_coverage(size: int, e: float, n: float, heading: float, length: float, width: float,
                 fine: int = 10) -> tuple[np.ndarray, tuple[int, int]]:
    """Coverage of a box (metres from the image's top-left corner, north up) on a local 10 m window."""
    reach = int(np.ceil((length + width) / 20.0)) + 1
    c0, r0 = int(e // 10.0) - reach, int(-n // 10.0) - reach
    side = 2 * reach + 1
    xs = (np.arange(side * fine) + 0.5) / fine * 10.0
    ee = c0 * 10.0 + xs[None, :]
    nn = -(r0 * 10.0 + xs[:, None])
    t = np.radians(heading)
    along = (ee - e) * np.sin(t) + (nn - n) * np.cos(t)
    across = (ee - e) * np.cos(t) - (nn - n) * np.sin(t)
    inside = (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)
    return inside.reshape(side, fine, side, fine).mean(axis=(1, 3)).astype(np.float32), (r0, c0)


def paste(canvas: np.ndarray, patch: np.ndarray, origin: tuple[int, int]) -> None:
    """Add ``patch`` into ``canvas`` (last two axes) at ``origin``, clipped to the canvas."""
    r0, c0 = origin
    h, w = canvas.shape[-2:]
    pr0, pc0 = max(0, -r0), max(0, -c0)
    r1, c1 = min(h, r0 + patch.shape[-2]), min(w, c0 + patch.shape[-1])
    if r1 <= max(r0, 0) or c1 <= max(c0, 0):
        return
    canvas[..., max(r0, 0):r1, max(c0, 0):c1] += patch[..., pr0:pr0 + r1 - max(r0, 0), pc0:pc0 + c1 - max(c0, 0)]


def open_country(rng: np.random.Generator, contrast: float = 0.1) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features with and without road mask, targets): fields, 1-3 straight roads, trucks and cars.

    Trucks (8-18 m) drive at 10-170 km/h, cars (4-5 m) at 30-170 km/h, a few trucks stand; each is
    drawn per band where it was at that band's time, like the renderer's Sentinel-2 motion.
    """
    size = OPEN_SIZE
    n_patch = int(rng.integers(6, 16))
    centres = rng.uniform(0, size, (n_patch, 2))
    rr, cc = np.mgrid[0:size, 0:size] + 0.5
    owner = np.argmin((rr[..., None] - centres[:, 0]) ** 2 + (cc[..., None] - centres[:, 1]) ** 2, axis=-1)
    kinds = rng.choice(len(FIELD_MATERIALS), size=n_patch, p=FIELD_WEIGHTS)
    refl = FIELD_MATERIALS[kinds][owner].transpose(2, 0, 1).copy()
    refl *= rng.uniform(0.85, 1.15, (1, size, size)).astype(np.float32)
    refl *= (1.0 + 0.05 * gaussian_filter(rng.standard_normal((size, size)), 1.5)).astype(np.float32)
    road = np.zeros((size, size), dtype=bool)
    asphalt = np.array(materials.GROUND["road"], dtype=np.float32) * rng.uniform(0.85, 1.3)
    t = {band: SENTINEL2.time_offsets_s[band] for band in ("B02", "B03", "B04", "B08")}
    order = ("B02", "B03", "B04", "B08")
    target = np.zeros((N_TARGETS, size, size), dtype=np.float32)
    t_mean = float(np.mean([t[band] for band in order[:3]]))
    best = np.zeros((size, size), dtype=np.float32)
    dark = np.zeros((size, size), dtype=np.float32)
    delta = np.zeros((4, size, size), dtype=np.float32)
    for _ in range(int(rng.integers(1, 4))):
        heading = float(rng.uniform(0, 180))
        h = np.radians(heading)
        lanes_each = int(rng.integers(1, 4))
        half_w = lanes_each * 3.5 + rng.uniform(0, 4)
        oc = rng.uniform(20, size * 10 - 20, 2)  # a point on the road axis (e, -n) metres
        across = (cc * 10 - oc[0]) * np.cos(h) - (-(rr * 10) + oc[1]) * np.sin(h)
        frac = np.clip((half_w - np.abs(across)) / 10.0 + 0.5, 0.0, 1.0).astype(np.float32)
        refl = refl * (1 - frac) + asphalt[:, None, None] * frac
        road |= frac > 0.3
        length_m = size * 10 * 1.5
        for _ in range(int(rng.poisson(lanes_each * 10))):
            truck = rng.random() < 0.45
            side = 1 if rng.random() < 0.5 else -1
            offset = side * rng.uniform(1.5, half_w - 1.5)
            s_along = rng.uniform(-length_m / 2, length_m / 2)
            e = oc[0] + s_along * np.sin(h) + offset * np.cos(h)
            n = -oc[1] + s_along * np.cos(h) - offset * np.sin(h)
            head = heading if side > 0 else heading + 180.0
            if truck:
                length, width = rng.uniform(8, 18), 2.5
                speed = 0.0 if rng.random() < 0.1 else rng.uniform(10, 170)
                colour = int(rng.choice(len(materials.VEHICLE_COLOURS), p=materials.VEHICLE_COLOUR_WEIGHTS))
                colour = 0 if rng.random() < 0.5 else colour
            else:
                length, width = rng.uniform(4, 5), 1.8
                speed = rng.uniform(30, 170)
                colour = int(rng.choice(len(materials.VEHICLE_COLOURS), p=materials.VEHICLE_COLOUR_WEIGHTS))
            paint = 0.8 * materials.VEHICLE_COLOUR_TABLE[colour] + 0.2 * materials.GLASS
            v = speed / 3.6
            ve, vn = v * np.sin(np.radians(head)), v * np.cos(np.radians(head))
            covers = []
            for b, band in enumerate(order):
                cov, origin = box_coverage(size, e + ve * t[band], n + vn * t[band], head, length, width)
                paste(delta[b : b + 1], ((paint[b] - asphalt[b]) * cov)[None], origin)
                covers.append((cov, origin))
            mean = np.zeros((size, size), dtype=np.float32)
            for cov, origin in covers[:3]:
                paste(mean[None], cov[None] / 3.0, origin)
            if not truck:
                if speed > 0:
                    target[5] += mean
                continue
            if speed == 0:
                continue
            if not materials.stands_out_from_asphalt(np.array([colour]), contrast)[0]:
                dark += mean
                continue
            target[0] += mean
            mine = mean > best
            best = np.maximum(best, mean)
            for j, (t0, t1) in enumerate(((t["B02"], t["B04"]), (t["B02"], t["B03"]))):
                target[1 + 2 * j][mine] = -vn * (t1 - t0) / 10.0
                target[2 + 2 * j][mine] = ve * (t1 - t0) / 10.0
            add_centre(target[CENTRE_CHANNEL], -(n + vn * t_mean) / 10.0, (e + ve * t_mean) / 10.0)
    sigma = rng.uniform(0.3, 0.6)
    refl = refl + np.stack([gaussian_filter(d, sigma) for d in delta])
    refl = np.stack([gaussian_filter(b, sigma * 0.5) for b in refl])
    refl += rng.normal(0, rng.uniform(0.002, 0.005), refl.shape).astype(np.float32)
    target[0] = np.clip(target[0], 0, 1)
    target[5] = np.clip(target[5], 0, 1)
    target[IGNORE_CHANNEL] = ignore_around(dark)
    valid = np.ones((size, size), dtype=bool)
    return [(input_features(refl, valid, road), target), (input_features(refl, valid, None), target)]


# --- corridor scenes: motorways, trunk and primary roads through open country ----------------------


def corridor_sample(seed: int, contrast: float = 0.1) -> list[tuple[np.ndarray, np.ndarray]]:
    """One corridor render (:mod:`baseline.synth.corridor`, a random sun); (features, targets) with and
    without the road mask."""
    scene = render_corridor(CorridorParams.with_random_sun(seed))
    v = scene.vehicles
    mt = v[(v["class"] == "large").to_numpy() & v["moving"].to_numpy()]
    cars = v[(v["class"] == "car").to_numpy() & v["moving"].to_numpy()]
    target = targets(scene.grid, mt.geometry.values, mt["vx"].to_numpy(), mt["vy"].to_numpy(),
                     materials.stands_out_from_asphalt(mt["colour"].to_numpy(), contrast), cars)
    road = rasterize(((g, 1) for g in scene.roads.geometry.values), out_shape=scene.grid.shape,
                     transform=scene.grid.transform, fill=0, all_touched=True).astype(bool)
    return [(input_features(scene.reflectance, scene.valid, road), target),
            (input_features(scene.reflectance, scene.valid, None), target)]


def _cached(cache: Path | None, key: str, make: Callable[[], list]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``make()``'s samples, kept in ``cache`` (an .npz) under ``key``."""
    if cache is not None and cache.is_file():
        z = np.load(cache)
        if str(z["key"]) == key:
            return [(z[f"x{i}"], z[f"y{i}"]) for i in range(int(z["n"]))]
    samples = make()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"x{i}": x for i, (x, _) in enumerate(samples)} | {f"y{i}": y for i, (_, y) in enumerate(samples)}
        np.savez_compressed(cache, key=key, n=len(samples), **arrays)
    return samples


def training_samples(seeds: list[int], rng: np.random.Generator, inject: int, corridor_seeds: list[int],
                     n_open: int, cache: Path | None, contrast: float = 0.1) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every city seed's samples (kept in ``cache``), every corridor seed's, and ``n_open`` open-country
    scenes."""
    started = time.perf_counter()

    def city() -> list[tuple[np.ndarray, np.ndarray]]:
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for seed in seeds:
            out += scene_sample(seed, rng, inject, contrast)
            print(f"rendered seed {seed} ({time.perf_counter() - started:.0f} s)", flush=True)
        return out

    samples = _cached(cache, f"city-v3-{seeds[0]}-{seeds[-1]}-{len(seeds)}-{inject}-{contrast:g}", city)
    for seed in corridor_seeds:
        samples += corridor_sample(seed, contrast)
    print(f"rendered {len(corridor_seeds)} corridor scenes ({time.perf_counter() - started:.0f} s)", flush=True)
    for _ in range(n_open):
        samples += open_country(rng, contrast)
    print(f"drew {n_open} open-country scenes ({time.perf_counter() - started:.0f} s)", flush=True)
    return samples


def turned(x: np.ndarray, y: np.ndarray, quarter_turns: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rotate features and targets by quarter turns (counter-clockwise) and flip left-right; the
    displacement targets (rows, cols) turn with the image."""
    x = np.rot90(x, quarter_turns, axes=(1, 2))
    y = np.rot90(y, quarter_turns, axes=(1, 2)).copy()
    for _ in range(quarter_turns % 4):  # one counter-clockwise turn takes (dr, dc) to (-dc, dr)
        for j in (1, 3):
            y[j], y[j + 1] = -y[j + 1].copy(), y[j].copy()
    if flip:
        x = x[:, :, ::-1]
        y = y[:, :, ::-1].copy()
        y[2], y[4] = -y[2], -y[4]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def batches(samples: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, size: int,
            crop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random crops with random flips and quarter turns."""
    xs, ys = [], []
    for _ in range(size):
        x, y = samples[int(rng.integers(len(samples)))]
        h, w = x.shape[1:]
        hot = np.argwhere(y[0] > 0.05)
        if len(hot) and rng.random() < 0.5:  # half the crops hold a truck: positives are rare
            cy, cx = hot[int(rng.integers(len(hot)))]
            r = int(np.clip(cy - rng.integers(4, crop - 4), 0, max(0, h - crop)))
            c = int(np.clip(cx - rng.integers(4, crop - 4), 0, max(0, w - crop)))
        else:
            r = int(rng.integers(0, max(1, h - crop + 1)))
            c = int(rng.integers(0, max(1, w - crop + 1)))
        xc, yc = x[:, r : r + crop, c : c + crop], y[:, r : r + crop, c : c + crop]
        xc, yc = turned(xc, yc, int(rng.integers(4)), bool(rng.random() < 0.5))
        xs.append(xc)
        ys.append(yc)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def centre_focal_loss(logit: torch.Tensor, heat: torch.Tensor, alpha: float = 2.0, beta: float = 4.0,
                      keep: torch.Tensor | None = None) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (Law and Deng 2018; Zhou et al. 2019) on the centre
    heatmap, over the number of centres (pixels where ``heat`` is 1); ``keep`` (0 or 1 per pixel)
    leaves pixels out of the negative part."""
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 1.0
    pos_loss = -((1 - p) ** alpha * torch.log(p))[pos].sum()
    neg = ((1 - heat) ** beta) * p**alpha * torch.log(1 - p)
    if keep is not None:
        neg = neg * keep
    neg_loss = -neg[~pos].sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def loss_fn(raw: torch.Tensor, target: torch.Tensor, disp_weight: float = DISP_WEIGHT,
            dark: str = "negative") -> torch.Tensor:
    """Cross-entropy on the mean coverage (truck pixels weighted up: they are rare), the L1 error of
    the two displacements, weighted by coverage, where a truck covers the pixel, cross-entropy on
    the moving cars' coverage (auxiliary) and, for a network with a centre head (seven outputs),
    the focal loss on the centre heatmap. With ``dark`` "ignore", the coverage and centre losses
    skip the pixels around dark trucks (``IGNORE_CHANNEL``); with "negative" they are background."""
    if dark not in DARK_MODES:
        raise ValueError(f"dark={dark!r}: expected one of {', '.join(DARK_MODES)}")
    cover = target[:, 0]
    keep = 1.0 - target[:, IGNORE_CHANNEL] if dark == "ignore" else None
    weight = 1.0 + 20.0 * (cover > 0.01).float()
    if keep is not None:
        weight = weight * keep
    bce = F.binary_cross_entropy_with_logits(raw[:, 0], cover, weight=weight)
    on = (cover > 0.02).float() * cover.clamp(max=0.3) / 0.3
    l1 = (raw[:, 1:5] - target[:, 1:5]).abs().sum(dim=1)
    cars = F.binary_cross_entropy_with_logits(raw[:, 5], target[:, 5], weight=1.0 + 5.0 * (target[:, 5] > 0.01).float())
    loss = bce + disp_weight * (on * l1).sum() / on.sum().clamp(min=1.0) + 0.5 * cars
    if raw.shape[1] > CENTRE_CHANNEL:
        loss = loss + CENTRE_WEIGHT * centre_focal_loss(raw[:, CENTRE_CHANNEL], target[:, CENTRE_CHANNEL], keep=keep)
    return loss


def train(samples: list, steps: int, seed: int, width: int, dilations: tuple[int, ...], crop: int = 32,
          centre: bool = False, disp_weight: float = DISP_WEIGHT, dark: str = "negative",
          checkpoint: Callable[[TruckNet, list[float]], None] | None = None) -> tuple[TruckNet, list[float]]:
    """Adam with a cosine schedule; returns the network and the loss every 100 steps."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = TruckNet(width, dilations, centre=centre)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    record, running = [], 0.0
    for step in range(1, steps + 1):
        x, y = batches(samples, rng, 16, crop)
        loss = loss_fn(net(x), y, disp_weight, dark)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running += float(loss.detach())
        if step % 100 == 0:
            record.append(round(running / 100, 5))
            print(f"step {step}: loss {running / 100:.4f}", flush=True)
            running = 0.0
        if checkpoint is not None and step % 500 == 0 and step < steps:
            checkpoint(net, record)
    return net.eval(), record


def write_model(net: TruckNet, out: Path, card: dict) -> None:
    """``model.safetensors`` (float32), ``card.json`` and ``MODEL_CARD.md``."""
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "model.safetensors"),
              metadata={"name": MODEL_NAME, "version": MODEL_VERSION, "architecture": json.dumps(card["architecture"])})
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card_markdown(card))


def measured_lines(metrics: dict | None) -> str:
    """The card's "Measured" lines from ``metrics.json`` (written by ``scripts/score_s2_trucks.py --json``)."""
    if not metrics:
        return "- **Measured**: not yet; run `scripts/score_s2_trucks.py --json <model>/metrics.json`.\n"

    def line(name: str, row: dict) -> str:
        bright = row.get("bright_recall")
        return (f"  - {name}: {row['n_truth']} moving trucks, precision {row['precision']:.2f}, recall "
                f"{row['recall']:.2f}, F1 {row['f1']:.2f}; recall over trucks that stand out from asphalt "
                f"{bright:.2f} ({row['bright_found']}/{row['bright_trucks']}); speed MAE "
                f"{row['speed_mae_kmh']:.1f} km/h, heading error {row['heading_mae_deg']:.1f} deg\n")

    out = "- **Measured** (`scripts/score_s2_trucks.py`, pooled; match within 15 m):\n"
    if metrics.get("corridor"):
        out += line("corridor renders, seeds 9000-9029 (motorway, trunk, primary)", metrics["corridor"]["all"])
    if metrics.get("city"):
        out += line("city renders, seeds 2025-2031 (central Helsinki, trucks at 15-40 km/h)", metrics["city"]["all"])
    real = metrics.get("real_crop")
    if real:
        out += (f"  - real Sentinel-2 L2A motorway crop (S2TD): {real['detections']} moving trucks, "
                f"{real['on_carriageway']} on the carriageway derived from the image; median speed "
                f"{real['speed_kmh_median']:.0f} km/h\n")
    return out


def dark_line(contrast: float) -> str:
    """The card's sentence on which trucks had no training target."""
    if contrast <= 0:
        return "Every moving truck had a target, dark ones included."
    return f"Dark trucks (paint within {contrast:g} of asphalt) get no target."


def centre_line(card: dict) -> str:
    """The card's sentence on the centre-heatmap head, when the network has one."""
    if CENTRE_OUTPUT not in card["architecture"]["outputs"]:
        return ""
    return (f"Last, a heatmap peaked at each truck's centre at the copies' mean time (Gaussians of "
            f"{CENTRE_SIGMA_PX:g} px, CenterNet focal loss): objects start at its 3x3 peaks and score their heat, so "
            "two trucks whose coverage merges stay two. ")


def detection_line(card: dict) -> str:
    """The card's line on the thresholds that come with the network (its ``detection`` block)."""
    detection = card.get("detection")
    if not detection:
        return "- **Detection thresholds**: the code defaults of `TruckParams`.\n"
    settings = ", ".join(f"`{k}` {v:g}" for k, v in detection.items())
    return (f"- **Detection thresholds** (the card's `detection` block, best mean F1 of the tuning seeds on "
            f"`scripts/score_s2_trucks.py --grid`): {settings}.\n")


def model_card_markdown(card: dict, metrics: dict | None = None) -> str:
    """The card for people: what the network does, on what it was trained, how it is used and scored."""
    tr = card["training"]
    return f"""# {card["name"]} {card["version"]}

{card["task"]}.

- **Architecture**: `TruckNet` (baseline/detect/s2_trucks.py): 3x3 convolutions of width
  {card["architecture"]["width"]} with dilations {card["architecture"]["dilations"]} (receptive field
  {1 + 2 * sum(card["architecture"]["dilations"])} pixels), ReLU, a 1x1 head with {len(card["architecture"]["outputs"])}
  outputs; {card["architecture"]["parameters"]} weights, float32 safetensors.
- **Input**: Sentinel-2 L2A reflectance (0-1) at 10 m, bands blue, green, red, nir (B02, B03, B04, B08), turned
  into {card["architecture"]["inputs"]} features by `input_features` (band anomalies against the road median,
  colour, brightness, NDVI, road mask).
- **Output**: per pixel, the fraction covered by a moving large vehicle (mean of its B02-, B03- and B04-time
  copies; sigmoid), its B02->B04 and B02->B03 displacements (pixels), and an auxiliary moving-car coverage.
  {centre_line(card)}`extract_objects` turns these into trucks (blue -> green -> red order; speed = B02->B04
  displacement / time). {dark_line(tr.get("target_contrast", 0.1))}
{detection_line(card)}- **Training data**: {tr["scenes"]} renders of central Helsinki (`baseline.synth`, seeds {tr["seeds"][0]}-{tr["seeds"][1]},
  {tr["render"]}), each with {tr["extra_trucks_per_scene"]} extra trucks drawn at 10-170 km/h by the renderer's own
  per-band drawing, and corridor renders (`baseline.synth.corridor`, seeds {tr["corridor_seeds"]}: motorways, trunk
  and primary roads through open country, trucks at motorway speeds and in congestion), used with and without the
  road mask, and {tr["open_country_scenes"]} open-country scenes drawn in numpy (fields, one to three straight roads
  of 7-25 m, trucks of 8-18 m at 10-170 km/h and cars), all with and without the road mask, flips and quarter turns;
  {tr["steps"]} Adam steps,
  batch {tr["batch"]} crops of {tr["crop_px"]} px (script: `{tr["script"]}`).
- **Not trained or tuned on**: the city report seeds {card["not_trained_on"]["report_seeds"]} and corridor report
  seeds {card["not_trained_on"]["corridor_report_seeds"]}; thresholds were tuned on city seeds
  {", ".join(str(s) for s in card["not_trained_on"]["tuning_seeds"])} and corridor seeds
  {card["not_trained_on"]["corridor_tuning_seeds"]}.
- **Evaluation**: `scripts/score_s2_trucks.py` (renders of unseen seeds; the real Sentinel-2 motorway crop in
  `../shared/data/s2_trucks_test`); figures in `metrics.json` when written with `--json`.
{measured_lines(metrics)}- **Limits**: dark (black, grey, dark blue) trucks leave almost no signature at 10 m and are missed; white cars
  close together can read as one truck; trucks in town (15-40 km/h) move less than a pixel between bands and are
  found less often than on motorways; trained on renders only (one city and synthetic corridors). Report as relative traffic
  (trucks per km of road), never as a vehicle count.
- **Licence**: {card["licence"]}.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=seed_list_arg, default="1000-1079", help="render seeds to train on")
    ap.add_argument("--inject", type=int, default=12, help="extra trucks drawn per scene")
    ap.add_argument("--open", type=int, default=60, help="open-country scenes drawn in numpy")
    ap.add_argument("--corridor-seeds", type=seed_list_arg, default="5000-5119",
                    help="corridor renders (baseline.synth.corridor) to train on")
    ap.add_argument("--steps", type=int, default=15000)
    ap.add_argument("--width", type=int, default=40)
    ap.add_argument("--disp-weight", type=float, default=DISP_WEIGHT,
                    help="weight of the displacement loss (L1, pixels) against the coverage and centre losses; "
                         "0.6 gave finer headings and speeds but lower town F1 than the shipped 0.2 (see the README)")
    ap.add_argument("--centre", action="store_true",
                    help="add a centre-heatmap head (CenterNet focal loss): objects start at its peaks, so trucks "
                         "two pixels apart stay two")
    ap.add_argument("--target-contrast", type=float, default=0.1,
                    help="moving trucks whose paint differs from asphalt by less than this get no target "
                         "(0: every moving truck is a target, dark ones included)")
    ap.add_argument("--dark", choices=DARK_MODES, default="negative",
                    help="what the pixels around trucks under --target-contrast teach: 'negative' (background, "
                         "as shipped) or 'ignore' (left out of the coverage and centre losses: a detection there "
                         "is a true truck)")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / MODEL_NAME / MODEL_VERSION)
    ap.add_argument("--card-only", action="store_true",
                    help="rewrite MODEL_CARD.md of --out from its card.json and metrics.json, and stop")
    ap.add_argument("--samples", type=Path, default=ROOT / ".cache" / "s2-trucks-city.npz",
                    help="rendered city training samples are kept here and reused")
    args = ap.parse_args()
    if args.card_only:
        metrics_path = args.out / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
        (args.out / "MODEL_CARD.md").write_text(
            model_card_markdown(json.loads((args.out / "card.json").read_text()), metrics))
        print(f"wrote {args.out / 'MODEL_CARD.md'}")
        return
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(20250)
    started = time.perf_counter()
    seeds = args.seeds
    if not args.disp_weight > 0:
        ap.error(f"--disp-weight {args.disp_weight}: the displacement loss needs a weight above 0 (the shipped one is "
                 f"{DISP_WEIGHT})")
    if not seeds:
        ap.error("--seeds names no seed: give at least one render seed to train on (e.g. 1000-1079)")
    samples = training_samples(seeds, rng, args.inject, args.corridor_seeds, args.open, args.samples,
                               args.target_contrast)
    render_s = time.perf_counter() - started

    def card_for(net: TruckNet, record: list[float], steps: int) -> dict:
        return {
            "name": MODEL_NAME,
            "version": MODEL_VERSION,
            "task": "Sentinel-2 moving trucks: per pixel, the truck coverage (mean of its B02-, B03- and B04-time "
                    "copies)" + (", the B02->B04 and B02->B03 displacements, and a heatmap peaked at each truck's "
                                 "centre" if args.centre else " and the B02->B04 and B02->B03 displacements"),
            "architecture": {"kind": "TruckNet", "width": args.width, "dilations": list(DILATIONS),
                             "inputs": N_FEATURES, "outputs": [*OUTPUTS, "moving_car_logit (auxiliary)",
                                                           *([CENTRE_OUTPUT] if args.centre else [])],
                             "parameters": int(sum(p.numel() for p in net.parameters()))},
            "input": {"bands": ["blue", "green", "red", "nir"], "gsd_m": 10.0, "reflectance": "0 to 1",
                      "features": "baseline.detect.s2_trucks.input_features"},
            "training": {"script": "scripts/train_s2_trucks.py", "seeds": [seeds[0], seeds[-1]], "scenes": len(seeds),
                         "render": "central Helsinki, VHR gsd 1 m, random sun (25-55 deg elevation)",
                         "corridor_seeds": seed_list_text(args.corridor_seeds), "open_country_scenes": args.open,
                         "extra_trucks_per_scene": args.inject,
                         "target_contrast": args.target_contrast, "dark_trucks": args.dark, "disp_weight": args.disp_weight, "steps": steps, "batch": 16, "crop_px": 32,
                         "loss_every_100_steps": record, "render_s": round(render_s, 1),
                         "train_s": round(time.perf_counter() - started - render_s, 1)},
            "not_trained_on": {"tuning_seeds": [7, 101, 102, 103, 104, 105], "report_seeds": "2025-2031",
                               "corridor_tuning_seeds": "8000-8009", "corridor_report_seeds": "9000-9029"},
            "licence": "Apache-2.0; training scenes rendered from OpenStreetMap data (c) OpenStreetMap contributors, ODbL 1.0",
        }

    net, record = train(samples, args.steps, 0, args.width, DILATIONS, centre=args.centre, disp_weight=args.disp_weight,
                        dark=args.dark,
                        checkpoint=lambda n, r: write_model(n, args.out, card_for(n, r, len(r) * 100)))
    write_model(net, args.out, card_for(net, record, args.steps))
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
