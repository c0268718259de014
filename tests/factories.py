"""Seeded factories for small, real test rasters: COGs with STAC Item sidecars.

Like rio-tiler's fixture factory: choose CRS, origin, GSD, dtype and how
validity is stored (internal mask or nodata value), and get a tiled COG with
overviews plus the sidecar that ``baseline.ingest`` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.transform import from_origin

from baseline.core.chips import Chip, ChipWindow

HELSINKI_X0, HELSINKI_Y0 = 385500.0, 6672900.0


def write_cog_scene(
    folder: Path,
    *,
    name: str = "vhr",
    data: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    crs: str = "EPSG:32635",
    x0: float = HELSINKI_X0,
    y0: float = HELSINKI_Y0,
    gsd: float = 0.3,
    bands: tuple[str, ...] = ("blue", "green", "red", "nir"),
    sensor: str = "vhr",
    sun_elevation: float = 40.0,
    sun_azimuth: float = 180.0,
    datetime: str = "2024-06-14T09:30:00Z",
    offsets: dict[str, float] | None = None,
    seed: int = 0,
    shape: tuple[int, int] = (300, 400),
) -> Path:
    """Write ``<name>.tif`` (COG, internal mask) and ``<name>.json`` (STAC Item); return the Item path."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if data is None:
        data = rng.integers(200, 3000, size=(len(bands), *shape), dtype=np.uint16)
    count, rows, cols = data.shape
    if valid is None:
        valid = np.ones((rows, cols), dtype=bool)
    tif = folder / f"{name}.tif"
    transform = from_origin(x0, y0, gsd, gsd)
    tmp = folder / f".{name}.tmp.tif"
    profile = dict(driver="GTiff", width=cols, height=rows, count=count, dtype=data.dtype.name, crs=crs,
                   transform=transform, tiled=True, blockxsize=256, blockysize=256)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        dst.write_mask((valid * 255).astype(np.uint8))
        dst.descriptions = bands
    with rasterio.open(tmp) as src:
        cog_profile = dict(src.profile, driver="COG", compress="deflate")
        for k in ("blockxsize", "blockysize", "tiled", "interleave"):
            cog_profile.pop(k, None)
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tif, "w", **cog_profile) as dst:
            dst.write(src.read())
            dst.write_mask(src.dataset_mask())
            dst.descriptions = bands
    tmp.unlink()
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": f"test-{name}",
        "geometry": None,
        "properties": {
            "datetime": datetime,
            "gsd": gsd,
            "proj:code": crs,
            "view:sun_elevation": sun_elevation,
            "view:sun_azimuth": sun_azimuth,
            "view:off_nadir": 0.0,
            "citybaseline:sensor": sensor,
            "citybaseline:band_time_offsets_s": offsets or {b: 0.0 for b in bands},
            "citybaseline:scale": 1e-4,
        },
        "assets": {"image": {"href": tif.name, "roles": ["data"], "eo:bands": [{"name": b} for b in bands]}},
        "links": [],
    }
    item_path = folder / f"{name}.json"
    item_path.write_text(json.dumps(item, indent=2))
    return item_path


# --- the inference runtime: a small network and chips of sensor counts ---


class TinyNetModel:
    """The parts of a LoadedModel the runtime reads, around a small conv net."""

    bands = ("blue", "green", "red", "nir")
    gsd_m = 0.3
    mean = (0.10, 0.12, 0.14, 0.30)
    std = (0.05, 0.05, 0.06, 0.10)

    def __init__(self, sun_planes: tuple[str, ...] = ()) -> None:
        torch.manual_seed(0)
        self.sun_planes = sun_planes
        self.network = torch.nn.Sequential(
            torch.nn.Conv2d(4 + len(sun_planes), 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 1)
        ).eval()


def counts_chip(counts: np.ndarray, valid: np.ndarray, scale: float = 1e-4) -> Chip:
    h, w = valid.shape
    return Chip("s", ChipWindow(0, 0, h, w, (0, 0, h, w)), counts, valid, Affine.identity(), 0.3, dn_scale=scale)


def host_normalised(chip: Chip, model: TinyNetModel, multiple: int) -> np.ndarray:
    """The normalisation as the host used to do it, in float32 numpy, padded with invalid (0) pixels."""
    refl = np.clip(chip.pixels.astype(np.float32) * np.float32(chip.dn_scale), 0, 1.5)
    image = (refl - np.asarray(model.mean, np.float32)[:, None, None]) / np.asarray(model.std, np.float32)[:, None, None]
    image[:, ~chip.valid] = 0
    h, w = chip.valid.shape
    return np.pad(image, ((0, 0), (0, -h % multiple), (0, -w % multiple)))


def render_crop(folder: Path, bbox: tuple[float, float, float, float], *, seed: int = 11) -> Path:
    """Render a crop of central Helsinki (sun 45/200) into ``folder``: a small, real scene for slow tests."""
    from baseline.synth import RenderParams, render_scene, write_scene

    params = RenderParams(city="helsinki", seed=seed, sun_elevation_deg=45, sun_azimuth_deg=200, bbox=bbox)
    write_scene(render_scene(params), folder)
    return folder


def road_map_context():
    """A hand-drawn map: an east-west two-lane road (y in [-3.25, 3.25], EPSG:32635), kerb strips either side,
    a car park to the north (x 20-60, y 20-50)."""
    import geopandas as gpd
    import shapely
    from pyproj import CRS
    from shapely.geometry import LineString, box

    from baseline.context.osm import MapContext

    crs = CRS.from_epsg(32635)
    seg = gpd.GeoDataFrame({"road_id": [1], "lanes": [2], "bearing_deg": [90.0]},
                           geometry=[LineString([(0, 0), (100, 0)])], crs=crs)
    carriage = seg.set_geometry([box(0, -3.25, 100, 3.25)])
    kerb = seg.set_geometry([shapely.union(box(0, 3.25, 100, 5.65), box(0, -5.65, 100, -3.25))])
    park = gpd.GeoDataFrame({"osm_id": [9]}, geometry=[box(20, 20, 60, 50)], crs=crs)
    empty = gpd.GeoDataFrame(geometry=[], crs=crs)
    return MapContext(crs, box(0, -50, 100, 100), empty, seg, carriage, kerb, park, empty, empty)
