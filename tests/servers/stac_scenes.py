"""Sentinel-2 and Landsat acquisitions made as COGs, with Items, for the loopback STAC API.

Reflectance is a known plane in UTM metres (so georeferencing and scaling can
be checked pixel by pixel after staging), and each acquisition's clouds are
drawn where the test wants them: over the city or only elsewhere in the tile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from affine import Affine
from pyproj import Transformer

from tests.servers.stac_server import StacServer, asset, item_dict, write_cog

# a 3 km tile around a 1 km city box in central Helsinki (UTM 35N)
EPSG = 32635
TILE_X0, TILE_Y1, TILE_M = 384000.0, 6673500.0, 3000.0
CITY = (385000.0, 6671500.0, 386000.0, 6672500.0)  # UTM box of the city
BAND_BASE = {"blue": 0.05, "green": 0.08, "red": 0.10, "nir": 0.30}


def city_lonlat() -> tuple[float, float, float, float]:
    """The city box in degrees, slightly inside the UTM box (the AOI a config would give)."""
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    w, s = t.transform(CITY[0] + 20, CITY[1] + 20)
    e, n = t.transform(CITY[2] - 20, CITY[3] - 20)
    return (w, s, e, n)


def reflectance_plane(band: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The true reflectance of ``band`` at UTM (x, y): a gentle plane, distinct per band."""
    return BAND_BASE[band] + 1e-5 * (x - TILE_X0) + 0.5e-5 * (TILE_Y1 - y)


@dataclass
class Acq:
    """One acquisition to publish: when, where its clouds are, what the tile's metadata claims."""

    item_id: str
    when: datetime
    cloud_boxes: list[tuple[float, float, float, float]]
    tile_cloud_cover: float


def publish_s2(server: StacServer, root: Path, acq: Acq, *, collection: str = "sentinel-2-l2a",
               style: str = "earth-search", signed: bool = False) -> dict:
    """Write one Sentinel-2 L2A tile (10 m bands, 20 m SCL) and add its Item.

    ``style`` earth-search: common-name asset keys and ``raster:bands``
    offset -0.1; planetary-computer: B02.. keys, no raster scale, and the
    offset told only by ``s2:processing_baseline``.
    """
    folder = root / acq.item_id
    n10, n20 = int(TILE_M / 10), int(TILE_M / 20)
    t10 = Affine(10, 0, TILE_X0, 0, -10, TILE_Y1)
    t20 = Affine(20, 0, TILE_X0, 0, -20, TILE_Y1)
    cols, rows = np.meshgrid(np.arange(n10) + 0.5, np.arange(n10) + 0.5)
    x, y = TILE_X0 + cols * 10, TILE_Y1 - rows * 10
    keys = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"} if style == "planetary-computer" else {
        b: b for b in BAND_BASE}
    prefix = "signed" if signed else "files"
    assets = {}
    for band, key in keys.items():
        dn = np.rint(reflectance_plane(band, x, y) * 10000 + 1000).astype(np.uint16)
        write_cog(folder / f"{key}.tif", dn, f"EPSG:{EPSG}", t10)
        extra = {} if style == "planetary-computer" else {"scale": 1e-4, "offset": -0.1}
        assets[key] = asset(f"{server.url}/{prefix}/{acq.item_id}/{key}.tif", EPSG, (n10, n10), t10, **extra)
    c20, r20 = np.meshgrid(np.arange(n20) + 0.5, np.arange(n20) + 0.5)
    x20, y20 = TILE_X0 + c20 * 20, TILE_Y1 - r20 * 20
    scl = np.full((n20, n20), 4, np.uint8)  # vegetation: clear
    for x0, y0, x1, y1 in acq.cloud_boxes:
        scl[(x20 >= x0) & (x20 < x1) & (y20 >= y0) & (y20 < y1)] = 9  # cloud, high probability
    scl_key = "SCL" if style == "planetary-computer" else "scl"
    write_cog(folder / f"{scl_key}.tif", scl, f"EPSG:{EPSG}", t20)
    assets[scl_key] = asset(f"{server.url}/{prefix}/{acq.item_id}/{scl_key}.tif", EPSG, (n20, n20), t20,
                            dtype="uint8")
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    w, s = t.transform(TILE_X0, TILE_Y1 - TILE_M)
    e, n = t.transform(TILE_X0 + TILE_M, TILE_Y1)
    props = {"eo:cloud_cover": acq.tile_cloud_cover, "platform": "sentinel-2b", "proj:epsg": EPSG,
             "s2:processing_baseline": "05.10"}
    if style == "earth-search":
        props.update({"view:sun_elevation": 48.0, "view:sun_azimuth": 170.0})
    else:
        props.update({"s2:mean_solar_zenith": 42.0, "s2:mean_solar_azimuth": 170.0})
    item = item_dict(acq.item_id, collection, acq.when, [w, s, e, n], assets, props)
    server.add_item(item)
    return item


def publish_landsat(server: StacServer, root: Path, acq: Acq) -> dict:
    """One Landsat C2 L2 tile (30 m): surface reflectance with scale 2.75e-5 and offset -0.2, QA_PIXEL bits."""
    folder = root / acq.item_id
    n = int(TILE_M / 30)
    t30 = Affine(30, 0, TILE_X0, 0, -30, TILE_Y1)
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    x, y = TILE_X0 + cols * 30, TILE_Y1 - rows * 30
    assets = {}
    for band, key in {"blue": "blue", "green": "green", "red": "red", "nir": "nir08"}.items():
        dn = np.rint((reflectance_plane(band, x, y) + 0.2) / 2.75e-5).astype(np.uint16)
        write_cog(folder / f"{key}.tif", dn, f"EPSG:{EPSG}", t30)
        assets[key] = asset(f"{server.url}/files/{acq.item_id}/{key}.tif", EPSG, (n, n), t30,
                            scale=2.75e-5, offset=-0.2)
    qa = np.full((n, n), 21824, np.uint16)  # clear land, low confidences (a real QA_PIXEL value)
    for x0, y0, x1, y1 in acq.cloud_boxes:
        qa[(x >= x0) & (x < x1) & (y >= y0) & (y < y1)] = 22280  # cloud (bit 3) with high confidence
    write_cog(folder / "qa_pixel.tif", qa, f"EPSG:{EPSG}", t30, nodata=1)
    assets["qa_pixel"] = asset(f"{server.url}/files/{acq.item_id}/qa_pixel.tif", EPSG, (n, n), t30, nodata=1)
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    w, s = t.transform(TILE_X0, TILE_Y1 - TILE_M)
    e, nn = t.transform(TILE_X0 + TILE_M, TILE_Y1)
    item = item_dict(acq.item_id, "landsat-c2-l2", acq.when, [w, s, e, nn], assets,
                     {"eo:cloud_cover": acq.tile_cloud_cover, "platform": "landsat-9",
                      "view:sun_elevation": 45.0, "view:sun_azimuth": 165.0})
    server.add_item(item)
    return item


def publish_s2_across_antimeridian(server: StacServer, root: Path, when: datetime) -> tuple[float, float, float, float]:
    """Two Sentinel-2 tiles over Taveuni (Fiji), one in UTM 60S west of 180 degrees, one in UTM 1S east of it.

    Reflectance is a plane in longitude (continuous across 180 degrees), so a
    staged scene can be checked for seams. Returns the AOI box (west > east).
    """
    lat0, lat1 = -16.90, -16.80
    sides = [("S2B_60KYF", 32760, 179.88, 180.0), ("S2B_01KAA", 32701, -180.0, -179.88)]
    for item_id, epsg, lon0, lon1 in sides:
        to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
        xs, ys = to_utm.transform([lon0, lon1, lon0, lon1], [lat0, lat0, lat1, lat1])
        x0, y1 = np.floor(min(xs) / 10) * 10 - 200, np.ceil(max(ys) / 10) * 10 + 200
        w, h = int((max(xs) - x0 + 200) / 10), int((y1 - min(ys) + 200) / 10)
        t10 = Affine(10, 0, x0, 0, -10, y1)
        cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        lon, _ = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x0 + cols * 10, y1 - rows * 10)
        unwrapped = np.where(lon < 0, lon + 360.0, lon)
        lo, hi = lon0 % 360.0, (lon1 + 360.0 if lon1 <= 0 else lon1)  # this tile's span, unwrapped
        inside = (unwrapped >= lo) & (unwrapped <= hi)
        assets = {}
        for band in BAND_BASE:
            ref = BAND_BASE[band] + 0.5 * (unwrapped - 179.88)
            dn = np.where(inside, np.rint(ref * 10000 + 1000), 0).astype(np.uint16)
            write_cog(root / item_id / f"{band}.tif", dn, f"EPSG:{epsg}", t10)
            assets[band] = asset(f"{server.url}/files/{item_id}/{band}.tif", epsg, (h, w), t10, scale=1e-4,
                                 offset=-0.1)
        scl = np.where(inside[::2, ::2], 4, 0).astype(np.uint8)
        t20 = Affine(20, 0, x0, 0, -20, y1)
        write_cog(root / item_id / "scl.tif", scl, f"EPSG:{epsg}", t20)
        assets["scl"] = asset(f"{server.url}/files/{item_id}/scl.tif", epsg, scl.shape, t20, dtype="uint8")
        server.add_item(item_dict(item_id, "sentinel-2-l2a", when, [lon0, lat0, lon1, lat1], assets,
                                  {"eo:cloud_cover": 0.0, "view:sun_elevation": 60.0, "view:sun_azimuth": 40.0}))
    return (179.92, -16.88, -179.92, -16.82)


# top-of-atmosphere spectra s2cloudless knows well: vegetation-and-city ground, and thick cloud
L1C_BANDS = ("coastal", "blue", "red", "rededge1", "nir", "nir08", "nir09", "cirrus", "swir16", "swir22")
L1C_GROUND = (0.12, 0.09, 0.06, 0.10, 0.30, 0.32, 0.10, 0.002, 0.18, 0.09)
L1C_CLOUD = (0.45, 0.44, 0.46, 0.47, 0.50, 0.50, 0.30, 0.05, 0.40, 0.30)


def publish_s2_l1c(server: StacServer, root: Path, acq: Acq) -> dict:
    """The L1C twin of an acquisition (Earth Search keys, 60 m): thick cloud in ``acq.cloud_boxes``."""
    folder = root / f"{acq.item_id}_L1C"
    n = int(TILE_M / 60)
    t60 = Affine(60, 0, TILE_X0, 0, -60, TILE_Y1)
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    x, y = TILE_X0 + cols * 60, TILE_Y1 - rows * 60
    cloudy = np.zeros((n, n), bool)
    for x0, y0, x1, y1 in acq.cloud_boxes:
        cloudy |= (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    assets = {}
    for band, ground, cloud in zip(L1C_BANDS, L1C_GROUND, L1C_CLOUD, strict=True):
        dn = np.rint(np.where(cloudy, cloud, ground) * 10000 + 1000).astype(np.uint16)
        write_cog(folder / f"{band}.tif", dn, f"EPSG:{EPSG}", t60)
        assets[band] = asset(f"{server.url}/files/{acq.item_id}_L1C/{band}.tif", EPSG, (n, n), t60, scale=1e-4,
                             offset=-0.1)
    t = Transformer.from_crs(EPSG, 4326, always_xy=True)
    w, s = t.transform(TILE_X0, TILE_Y1 - TILE_M)
    e, nn = t.transform(TILE_X0 + TILE_M, TILE_Y1)
    item = item_dict(f"{acq.item_id}_L1C", "sentinel-2-l1c", acq.when, [w, s, e, nn], assets,
                     {"eo:cloud_cover": acq.tile_cloud_cover, "s2:processing_baseline": "05.10"})
    server.add_item(item)
    return item
