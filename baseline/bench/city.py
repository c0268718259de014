"""A rendered city of any area for benchmarks: periodic copies of one rendered scene.

The renderer draws one OpenStreetMap extract (central Helsinki is about
1.7 km²), so a larger city is made by laying copies of a rendered scene side
by side, shifted by whole multiples of its extent: pixels are copied exactly
(no resampling) and the map context (roads, car parks, buildings) is shifted
with them, so classify and aggregate see a consistent city. Content per km²
is that of the rendered scene, which is what throughput depends on. The image
is written block by block (a tiled, deflate-compressed GeoTIFF with an
internal mask, like the renderer's), so building a large city needs little
memory.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import Transformer
from rasterio.windows import Window

from baseline.context.osm import MapContext
from baseline.errors import InvalidValueError

BLOCK = 512
_FRAMES = ("buildings", "road_segments", "carriageways", "kerb_strips", "car_parks", "vegetation", "water")


@dataclass(frozen=True)
class BenchCity:
    """A bench city on disk: its scene folder, size and how it tiles the base scene."""

    scene_dir: Path
    area_km2: float
    rows: int
    cols: int
    gsd_m: float
    base_rows: int
    base_cols: int
    origin: tuple[float, float]

    @property
    def copies(self) -> tuple[int, int]:
        """(down, across): copies of the base scene needed to cover the city."""
        return math.ceil(self.rows / self.base_rows), math.ceil(self.cols / self.base_cols)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        x0, y0 = self.origin
        return (x0, y0 - self.rows * self.gsd_m, x0 + self.cols * self.gsd_m, y0)


def _city_shape(area_km2: float, gsd_m: float) -> tuple[int, int]:
    side_px = int(round(math.sqrt(area_km2) * 1000.0 / gsd_m))
    if side_px < 64:
        raise InvalidValueError("bench area", area_km2, f"at least {(64 * gsd_m / 1000) ** 2:.4f} km² (64 pixels a side)")
    return side_px, side_px


def build_bench_city(base_scene: Path, area_km2: float, out_dir: Path) -> BenchCity:
    """Write a square city of ``area_km2`` made of copies of ``base_scene``'s VHR image into ``out_dir``."""
    item = json.loads((base_scene / "vhr.json").read_text())
    href = base_scene / item["assets"]["image"]["href"]
    out_dir = Path(out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    with rasterio.open(href) as src:
        gsd = abs(src.transform.a)
        rows, cols = _city_shape(area_km2, gsd)
        base = src.read()
        base_valid = src.dataset_mask() > 0
        profile = dict(driver="GTiff", width=cols, height=rows, count=src.count, dtype=src.dtypes[0], crs=src.crs,
                       transform=src.transform, tiled=True, blockxsize=BLOCK, blockysize=BLOCK,
                       compress="deflate", interleave="pixel", BIGTIFF="IF_SAFER")
        descriptions = src.descriptions
        origin = (src.transform.c, src.transform.f)
    bh, bw = base_valid.shape
    tif = out_dir / "vhr.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tif, "w", **profile) as dst:
        dst.descriptions = descriptions
        col_idx = np.arange(cols) % bw
        for r0 in range(0, rows, BLOCK):
            h = min(BLOCK, rows - r0)
            row_idx = np.arange(r0, r0 + h) % bh
            window = Window(0, r0, cols, h)
            dst.write(base[:, row_idx][:, :, col_idx], window=window)
            dst.write_mask(np.where(base_valid[row_idx][:, col_idx], 255, 0).astype(np.uint8), window=window)
    del base
    city = BenchCity(out_dir, rows * cols * gsd * gsd / 1e6, rows, cols, gsd, bh, bw, origin)
    _write_item(item, city, out_dir / "vhr.json")
    return city


def _write_item(item: dict, city: BenchCity, path: Path) -> None:
    """The base scene's STAC Item, renamed and resized to the city."""
    item = json.loads(json.dumps(item))
    props = item["properties"]
    props["proj:shape"] = [city.rows, city.cols]  # same origin and pixel size as the base scene
    xmin, ymin, xmax, ymax = city.bounds
    to_lonlat = Transformer.from_crs(props["proj:code"], "EPSG:4326", always_xy=True)
    lon0, lat0, lon1, lat1 = to_lonlat.transform_bounds(xmin, ymin, xmax, ymax)
    item["id"] = f"bench-{city.area_km2:.3f}km2-vhr"
    item["bbox"] = [lon0, lat0, lon1, lat1]
    item["geometry"] = shapely.geometry.mapping(shapely.box(lon0, lat0, lon1, lat1))
    item["geometry"]["coordinates"] = [[list(p) for p in ring] for ring in item["geometry"]["coordinates"]]
    item["assets"]["image"]["href"] = "vhr.tif"
    path.write_text(json.dumps(item, indent=2))


def tile_context(base: MapContext, city: BenchCity) -> MapContext:
    """``base`` copied once per copy of the base scene, each shifted with its pixels; AOI the city's box."""
    down, across = city.copies
    step_x, step_y = city.base_cols * city.gsd_m, city.base_rows * city.gsd_m
    frames: dict[str, list[gpd.GeoDataFrame]] = {name: [] for name in _FRAMES}
    for i in range(down):
        for j in range(across):
            copy = i * across + j
            for name in _FRAMES:
                frame = getattr(base, name).copy()
                frame["geometry"] = frame.geometry.translate(xoff=j * step_x, yoff=-i * step_y)
                for id_col in ("road_id", "osm_id"):
                    if id_col in frame and len(frame):
                        frame[id_col] = frame[id_col].astype("int64") + copy * 10**12
                frames[name].append(frame)
    merged = {
        name: gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=base.crs) for name, parts in frames.items()
    }
    return replace(base, aoi=shapely.box(*city.bounds), **merged)
