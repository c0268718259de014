"""Rendered samples and the spatial split for the Sentinel-2 built-up model (train, tune, score).

Shared by ``scripts/train_s2_builtup.py``, ``scripts/score_s2_builtup.py`` and
``tests/unit/test_s2_builtup.py``. A *sample* is one Sentinel-2 render
(``baseline.synth``, VHR at 1 m for speed: the 10 m image is an area average
of the ground and does not need a finer one) with its truth rasters, made by
:func:`baseline.detect.s2_builtup.footprint_rasters` from the render's own
truth footprints: the built-up fraction of every 10 m pixel (footprints
rasterised at 1 m, block-averaged) and the footprint-area-weighted mean
height of its buildings.

The spatial split. Every render of central Helsinki draws the same
OpenStreetMap footprints, so splitting by seed alone would let a network
memorise the city. The 10 m grid of the extract is 107 x 170 pixels (1.07 x
1.70 km, top-left corner (385410, 6673150) in EPSG:32635); its dense blocks are
in the south. The **test** region is its south-east block, x >= 385850 and
y < 6672150 (the eastern 63 columns of the southern 70 rows), which holds
three whole H3 res-9 cells; **train** is everything at least 300 m from it
(x < 385550 or y >= 6672450: the north and the western strip); **tune** is
the 300 m band between them. 300 m is wider than the network's reach on one
side (20 pixels, 200 m), so no test pixel is in the field of view of a train
pixel's output. (An eastern strip over the whole height, or a south-west
block, holds only two whole cells at that gap: the extract is only 1.07 km
wide.) Train and tune pixels come from the training renders (seeds 1000 on);
the test renders use seeds and suns never used there (2100 on).

Random layouts. The OSM footprints alone are one fixed geometry: a network
fitted on them learns *where* the buildings of the train region are as much as
what a building looks like. So half the training renders draw, instead,
random street grids of blocks (:func:`random_layout`: wholly built blocks,
perimeter blocks with courtyards, detached houses, slabs and towers of 3-120 m, parks, at a random
orientation) over the extract with ``buildings_path``, on central Helsinki's
own ground (roads, parks, water); they too are fitted only on train-region
pixels.

The Helsinki 3D city model's real footprints (measured heights 1.7-118 m)
are a second, wholly held-out test: they are moved onto the extract exactly as
``scripts/score_helsinki3d.py`` does (its ``prepare_area``) and rendered with
``buildings_path``; no part of them is ever trained on.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely import affinity

from baseline.detect.s2_builtup import footprint_rasters

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "s2-builtup"
DATA = ROOT.parent / "shared" / "data"
GAP_M = 300.0
TEST_X_MIN = 385850.0
"""Test region of central Helsinki: x at least this and y below :data:`TEST_Y_MAX` (EPSG:32635, pixel edges)."""
TEST_Y_MAX = 6672150.0
TRAIN_SEEDS = tuple(range(1000, 1036))
TRAIN_SUN = {"elevation": (25.0, 65.0), "azimuth": (100.0, 260.0)}
TEST_SCENES = ((2100, 28.0, 120.0), (2101, 38.0, 160.0), (2102, 48.0, 200.0), (2103, 58.0, 240.0),
               (2104, 33.0, 215.0), (2105, 63.0, 135.0))
"""(seed, sun elevation, sun azimuth) of the central-Helsinki test renders: seeds and suns not trained on."""
H3D_SCENES = (("kalasatama", 3101, 30.0, 150.0), ("kalasatama", 3102, 45.0, 200.0), ("kalasatama", 3103, 60.0, 240.0),
              ("viikki", 3104, 30.0, 150.0), ("viikki", 3105, 45.0, 200.0), ("viikki", 3106, 60.0, 240.0))
"""(area, seed, sun elevation, sun azimuth) of the Helsinki 3D city model renders."""
SYNTH_SEEDS = tuple(range(4000, 4036))
"""Seeds of the random-layout training renders (:func:`random_layout`)."""
LAYOUT_BOUNDS = (385480.0, 6671500.0, 386420.0, 6673080.0)
"""Where random layouts are drawn (EPSG:32635): the extract less a margin."""
SAMPLE_VERSION = "v1"


def regions(x0: float, y0: float, shape: tuple[int, int], gsd: float = 10.0) -> dict[str, np.ndarray]:
    """Boolean ``train``, ``tune`` and ``test`` masks of a central-Helsinki grid (pixel centres)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    x, y = x0 + (cols + 0.5) * gsd, y0 - (rows + 0.5) * gsd
    test = (x >= TEST_X_MIN) & (y < TEST_Y_MAX)
    train = (x < TEST_X_MIN - GAP_M) | (y >= TEST_Y_MAX + GAP_M)
    return {"train": train, "tune": ~train & ~test, "test": test}


def test_box() -> tuple[float, float, float, float]:
    """The test region as ``(xmin, ymin, xmax, ymax)`` (unbounded sides are far away)."""
    return (TEST_X_MIN, -1e9, 1e9, TEST_Y_MAX)


def sample_from(result: Any, tag: str) -> dict[str, Any]:
    """The arrays of one render: reflectance (0-1), valid, truth fraction and height, sun, grid."""
    grid = result.s2_grid
    frac, height = footprint_rasters(result.buildings.geometry.values, result.buildings["height_m"].to_numpy(),
                                     grid.transform, grid.shape)
    return {
        "tag": tag,
        "reflectance": result.s2[:4].astype(np.float32) * 1e-4,
        "valid": np.asarray(result.s2_valid, dtype=bool),
        "fraction": frac, "height": height,
        "sun": np.array([result.sun_elevation_deg, result.sun_azimuth_deg], dtype=np.float64),
        "x0": float(grid.x0), "y0": float(grid.y0), "gsd": float(grid.gsd), "epsg": int(grid.crs.to_epsg()),
    }


def cached(name: str, make: Callable[[], dict[str, Any]], cache: Path = CACHE) -> dict[str, Any]:
    """``make()``'s sample, kept in ``cache/<name>.npz``."""
    path = cache / f"{SAMPLE_VERSION}-{name}.npz"
    if path.is_file():
        z = np.load(path)
        out: dict[str, Any] = {k: z[k] for k in z.files}
        for k in ("x0", "y0", "gsd"):
            out[k] = float(out[k])
        out["epsg"], out["tag"] = int(out["epsg"]), str(out["tag"])
        return out
    sample = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **sample)
    tmp.rename(path)
    return sample


def city_sample(seed: int, elevation: float, azimuth: float,
                bbox: tuple[float, float, float, float] | None = None) -> dict[str, Any]:
    """One render of central Helsinki (OSM footprints) with its truth rasters; cached unless ``bbox``."""
    def make() -> dict[str, Any]:
        from baseline.synth import RenderParams, render_scene

        params = RenderParams(city="helsinki", seed=seed, gsd_m=1.0, sun_elevation_deg=elevation,
                              sun_azimuth_deg=azimuth, bbox=bbox, sentinel2=True)
        return sample_from(render_scene(params), f"helsinki-s{seed}-e{elevation:g}-a{azimuth:g}")

    if bbox is not None:
        return make()
    return cached(f"helsinki-s{seed}-e{elevation:.2f}-a{azimuth:.2f}", make)


def training_suns(seeds: tuple[int, ...] = TRAIN_SEEDS, rng_seed: int = 20251) -> list[tuple[int, float, float]]:
    """(seed, elevation, azimuth) of every training render: a random sun each (25-65, 100-260 degrees)."""
    rng = np.random.default_rng(rng_seed)
    return [(s, round(float(rng.uniform(*TRAIN_SUN["elevation"])), 2), round(float(rng.uniform(*TRAIN_SUN["azimuth"])), 2))
            for s in seeds]


def random_layout(seed: int, bounds: tuple[float, float, float, float] = LAYOUT_BOUNDS) -> gpd.GeoDataFrame:
    """Random city blocks with ``height_m`` (EPSG:32635) over ``bounds``: a street grid at a random angle,
    blocks of 40-120 m, each a park, wholly built (two to four parcels), a perimeter block with a courtyard
    (segments of varying height), detached houses, or slabs and towers. Heights: a block's base from a log-normal around 14 m (3-45 m), each building
    within +-35% of it, and one block in ten with a tower of 40-120 m."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    angle = float(rng.uniform(0, 90))
    reach = float(np.hypot(x1 - x0, y1 - y0)) / 2
    geoms: list[shapely.Geometry] = []
    heights: list[float] = []
    u = -reach
    while u < reach:
        bw = float(rng.uniform(40, 120))
        v = -reach
        while v < reach:
            bh = float(rng.uniform(40, 120))
            street = float(rng.uniform(10, 26))
            block = (u + street / 2, v + street / 2, u + bw - street / 2, v + bh - street / 2)
            base = float(np.clip(rng.lognormal(np.log(14.0), 0.5), 3.0, 45.0))
            kind = rng.choice(["park", "full", "perimeter", "detached", "slabs"], p=[0.12, 0.2, 0.33, 0.17, 0.18])
            parts = _block_buildings(rng, block, str(kind))
            for g in parts:
                geoms.append(g)
                heights.append(float(np.clip(base * rng.uniform(0.65, 1.35), 3.0, 60.0)))
            if parts and rng.random() < 0.1:  # a tower in the block
                bx0, by0, bx1, by1 = block
                side = float(rng.uniform(15, 35))
                tx, ty = rng.uniform(bx0, max(bx0, bx1 - side)), rng.uniform(by0, max(by0, by1 - side))
                geoms.append(shapely.box(tx, ty, tx + side, ty + side))
                heights.append(float(rng.uniform(40, 120)))
            v += bh
        u += bw
    rotated = [affinity.translate(affinity.rotate(g, angle, origin=(0, 0)), cx, cy) for g in geoms]
    frame = gpd.GeoDataFrame({"height_m": heights}, geometry=rotated, crs="EPSG:32635")
    frame = frame[frame.within(shapely.box(*bounds))]
    return frame.reset_index(drop=True)


def _block_buildings(rng: np.random.Generator, block: tuple[float, float, float, float], kind: str) -> list:
    """The footprints of one block (local coordinates)."""
    bx0, by0, bx1, by1 = block
    w, h = bx1 - bx0, by1 - by0
    if kind == "park" or w < 12 or h < 12:
        return []
    if kind == "full":  # the whole block built, in two to four parcels
        cuts = np.sort(rng.uniform(bx0 + 5, bx1 - 5, int(rng.integers(1, 4))))
        edges = [bx0, *cuts.tolist(), bx1]
        return [shapely.box(a, by0, b, by1) for a, b in zip(edges[:-1], edges[1:], strict=True) if b - a >= 4]
    if kind == "perimeter":
        depth = float(rng.uniform(11, 22))
        if w < 2 * depth + 8 or h < 2 * depth + 8:
            return [shapely.box(*block)]
        out = []
        for edge in (shapely.box(bx0, by0, bx1, by0 + depth), shapely.box(bx0, by1 - depth, bx1, by1),
                     shapely.box(bx0, by0 + depth, bx0 + depth, by1 - depth),
                     shapely.box(bx1 - depth, by0 + depth, bx1, by1 - depth)):
            ex0, ey0, ex1, ey1 = edge.bounds
            long_x = ex1 - ex0 >= ey1 - ey0
            length = (ex1 - ex0) if long_x else (ey1 - ey0)
            cuts = np.sort(rng.uniform(0, length, int(rng.integers(0, 3))))
            edges = [0.0, *cuts.tolist(), length]
            for a, b in zip(edges[:-1], edges[1:], strict=True):
                if b - a < 4:
                    continue
                out.append(shapely.box(ex0 + a, ey0, ex0 + b, ey1) if long_x else shapely.box(ex0, ey0 + a, ex1, ey0 + b))
        return out
    if kind == "detached":
        out = []
        for _ in range(int(rng.integers(3, 12))):
            sw, sh = rng.uniform(8, 25, 2)
            if sw >= w or sh >= h:
                continue
            x, y = rng.uniform(bx0, bx1 - sw), rng.uniform(by0, by1 - sh)
            g = shapely.box(x, y, x + sw, y + sh)
            if not any(g.buffer(3).intersects(o) for o in out):
                out.append(g)
        return out
    out = []
    for _ in range(int(rng.integers(1, 4))):  # slabs
        sw, sh = (rng.uniform(12, 20), rng.uniform(30, 90)) if rng.random() < 0.5 else (rng.uniform(30, 90), rng.uniform(12, 20))
        sw, sh = min(sw, w), min(sh, h)
        x, y = rng.uniform(bx0, max(bx0, bx1 - sw)), rng.uniform(by0, max(by0, by1 - sh))
        g = shapely.box(x, y, x + sw, y + sh)
        if not any(g.buffer(5).intersects(o) for o in out):
            out.append(g)
    return out


def layout_sample(seed: int, elevation: float, azimuth: float) -> dict[str, Any]:
    """One render of :func:`random_layout` (seed ``seed``) on central Helsinki's ground; cached."""
    def make() -> dict[str, Any]:
        from baseline.synth import RenderParams, render_scene

        path = CACHE / "layouts" / f"layout-{seed}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        random_layout(seed).to_parquet(path)
        params = RenderParams(city="helsinki", seed=seed, gsd_m=1.0, sun_elevation_deg=elevation,
                              sun_azimuth_deg=azimuth, buildings_path=path, height_column="height_m", sentinel2=True)
        return sample_from(render_scene(params), f"layout-s{seed}-e{elevation:g}-a{azimuth:g}")

    return cached(f"layout2-s{seed}-e{elevation:.2f}-a{azimuth:.2f}", make)


def _helsinki3d_module() -> Any:
    spec = importlib.util.spec_from_file_location("score_helsinki3d", ROOT / "scripts" / "score_helsinki3d.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("score_helsinki3d", module)
    spec.loader.exec_module(module)
    return module


def helsinki3d_available(data: Path = DATA) -> bool:
    """Whether the Helsinki 3D city model's footprints are there (``../shared`` may be absent)."""
    return (data / "helsinki_3d_buildings" / "helsinki_3d_lod2_buildings_epsg3879.geojson").is_file()


def helsinki3d_sample(area: str, seed: int, elevation: float, azimuth: float, data: Path = DATA) -> dict[str, Any]:
    """One render of a Helsinki 3D area's measured footprints, moved onto the extract as
    ``scripts/score_helsinki3d.py`` does, with a Sentinel-2 image; cached."""
    def make() -> dict[str, Any]:
        from baseline.synth import RenderParams, render_scene

        h3d = _helsinki3d_module()
        footprints, _ = h3d.prepare_area(area, CACHE / "helsinki3d", data, lowest_sun_deg=25.0)
        params = RenderParams(city="helsinki", seed=seed, gsd_m=1.0, sun_elevation_deg=elevation,
                              sun_azimuth_deg=azimuth, buildings_path=footprints, height_column=h3d.HEIGHT_COLUMN,
                              sentinel2=True)
        return sample_from(render_scene(params), f"{area}-s{seed}-e{elevation:g}-a{azimuth:g}")

    return cached(f"{area}-s{seed}-e{elevation:.2f}-a{azimuth:.2f}", make)


def render_all(include_3d: bool = True) -> None:
    """Render (or find cached) every training, test and Helsinki 3D sample, printing progress."""
    started = time.perf_counter()
    for seed, e, a in [*training_suns(), *TEST_SCENES]:
        city_sample(seed, e, a)
        print(f"helsinki seed {seed} ({time.perf_counter() - started:.0f} s)", flush=True)
    for seed, e, a in training_suns(SYNTH_SEEDS, rng_seed=20252):
        layout_sample(seed, e, a)
        print(f"layout seed {seed} ({time.perf_counter() - started:.0f} s)", flush=True)
    if include_3d and helsinki3d_available():
        for area, seed, e, a in H3D_SCENES:
            helsinki3d_sample(area, seed, e, a)
            print(f"{area} seed {seed} ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    render_all()
