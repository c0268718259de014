"""A tiny procedural labelled scene, in the same folder layout as ``baseline synth``.

For tests and smoke runs of training and detection where the real renderer
would be too slow: rectangular buildings (some sharing a wall) with ground
shadows cast from the sun angles, cars and large vehicles (some packed side by
side, some moving and so displaced between bands by the band timing), on an
asphalt-and-grass ground with noise. Seeded, so a test can rely on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio import features
from rasterio.transform import from_origin
from shapely.geometry import Polygon, box

from baseline.core.geo import compass_to_vector
from baseline.core.geoparquet import write_geoparquet
from baseline.detect.boxes import box_polygons
from baseline.detect.shadows import ground_shadow

TOY_CRS = "EPSG:32635"
TOY_ORIGIN = (385500.0, 6672900.0)
BAND_OFFSETS_S = {"blue": -0.10, "green": -0.05, "red": 0.0, "nir": 0.10}


def _rotated_rect(cx: float, cy: float, length: float, width: float, angle: float) -> Polygon:
    return box_polygons(cx, cy, length, width, angle)[0]


def toy_layout(rng: np.random.Generator, size_m: tuple[float, float], x0: float, y1: float):
    """Buildings (polygons, heights) and vehicles (dict rows) placed without overlaps."""
    w, h = size_m
    buildings: list[Polygon] = []
    heights: list[float] = []
    margin = 6.0
    for _ in range(200):
        if len(buildings) >= max(2, int(w * h / 900)):
            break
        bw, bh = rng.uniform(8, 26), rng.uniform(8, 22)
        cx, cy = x0 + rng.uniform(margin + bw / 2, w - margin - bw / 2), y1 - rng.uniform(margin + bh / 2, h - margin - bh / 2)
        angle = float(rng.choice([0.0, 0.0, rng.uniform(0, 90)]))
        poly = _rotated_rect(cx, cy, bw, bh, angle + 90)
        if any(poly.buffer(4.0).intersects(b) for b in buildings):
            continue
        buildings.append(poly)
        heights.append(float(rng.uniform(4, 35)))
        if angle == 0.0 and rng.random() < 0.5:  # a neighbour sharing the east wall
            nw = rng.uniform(6, 14)
            twin = box(cx + bw / 2, cy - bh / 2, cx + bw / 2 + nw, cy + bh / 2 - rng.uniform(0, 4))
            if twin.bounds[2] < x0 + w - margin and not any(twin.intersects(b) for b in buildings[:-1]):
                buildings.append(twin)
                heights.append(float(rng.uniform(4, 35)))
    vehicles = []
    taken = [b.buffer(1.5) for b in buildings]
    for _ in range(400):
        if len(vehicles) >= max(4, int(w * h / 250)):
            break
        large = rng.random() < 0.12
        length, width = (rng.uniform(8, 12), rng.uniform(2.4, 2.6)) if large else (rng.uniform(4.0, 4.9), rng.uniform(1.7, 1.9))
        heading = float(rng.uniform(0, 360))
        row_n = 1 if large or rng.random() < 0.5 else int(rng.integers(2, 5))  # packed parked rows
        moving = row_n == 1 and rng.random() < 0.5
        cx, cy = x0 + rng.uniform(8, w - 8), y1 - rng.uniform(8, h - 8)
        side_e, side_n = compass_to_vector(heading + 90)
        for k in range(row_n):
            px, py = cx + k * 2.5 * side_e, cy + k * 2.5 * side_n
            poly = _rotated_rect(px, py, length, width, heading)
            minx, miny, maxx, maxy = poly.bounds
            if minx < x0 + 2 or maxx > x0 + w - 2 or miny < y1 - h + 2 or maxy > y1 - 2:
                break
            if any(poly.buffer(0.3).intersects(t) for t in taken):
                break
            taken.append(poly)
            speed = float(rng.uniform(25, 60)) if moving else 0.0
            vehicles.append(
                {
                    "geometry": poly, "class": "large" if large else "car", "moving": moving, "speed_kmh": speed,
                    "heading_deg": heading, "length_m": length, "width_m": width,
                    "context": "lane" if moving else "car_park", "on_road": moving,
                }
            )
    return buildings, heights, vehicles


def render_toy_scene(
    folder: str | Path,
    *,
    seed: int = 0,
    shape: tuple[int, int] = (384, 384),
    gsd_m: float = 0.3,
    sun_elevation_deg: float = 40.0,
    sun_azimuth_deg: float = 160.0,
) -> Path:
    """Write ``vhr.tif``, ``vhr.json`` and ``truth/*.parquet`` for a toy scene into ``folder``."""
    folder = Path(folder)
    (folder / "truth").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, cols = shape
    x0, y1 = TOY_ORIGIN
    transform = from_origin(x0, y1, gsd_m, gsd_m)
    buildings, heights, vehicles = toy_layout(rng, (cols * gsd_m, rows * gsd_m), x0, y1)

    ground = np.array([0.07, 0.08, 0.09, 0.14], dtype=np.float32)
    img = np.broadcast_to(ground[:, None, None], (4, rows, cols)).copy()
    grass = rng.random((rows // 32 + 1, cols // 32 + 1)) < 0.25
    grass = np.kron(grass, np.ones((32, 32), dtype=bool))[:rows, :cols]
    img[:, grass] = np.array([0.04, 0.08, 0.05, 0.35], dtype=np.float32)[:, None]

    shadow = ground_shadow(buildings, np.array(heights), sun_elevation_deg, sun_azimuth_deg)
    if not shadow.is_empty:
        sm = features.rasterize([(shadow, 1)], out_shape=shape, transform=transform).astype(bool)
        img[:, sm] *= 0.35
    for poly in buildings:
        roof = rng.uniform(0.12, 0.4, size=4).astype(np.float32)
        m = features.rasterize([(poly, 1)], out_shape=shape, transform=transform).astype(bool)
        img[:, m] = roof[:, None]
        edge = m & ~features.rasterize([(poly.buffer(-0.6), 1)], out_shape=shape, transform=transform).astype(bool)
        img[:, edge] *= 0.8
    for v in vehicles:
        colour = rng.uniform(0.03, 0.6, size=4).astype(np.float32)
        ve, vn = compass_to_vector(v["heading_deg"])
        speed = v["speed_kmh"] / 3.6
        for band, name in enumerate(("blue", "green", "red", "nir")):
            dt = BAND_OFFSETS_S[name]
            poly = box_polygons(
                v["geometry"].centroid.x + ve * speed * dt, v["geometry"].centroid.y + vn * speed * dt,
                v["length_m"], v["width_m"], v["heading_deg"],
            )[0]
            m = features.rasterize([(poly, 1)], out_shape=shape, transform=transform, all_touched=False).astype(bool)
            img[band, m] = colour[band]
    img += rng.normal(0, 0.006, size=img.shape).astype(np.float32)
    data = np.clip(img * 10000, 1, 65535).astype(np.uint16)

    profile = {
        "driver": "GTiff", "height": rows, "width": cols, "count": 4, "dtype": "uint16",
        "crs": TOY_CRS, "transform": transform, "tiled": True, "blockxsize": 128, "blockysize": 128,
        "compress": "deflate",
    }
    with rasterio.open(folder / "vhr.tif", "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(
            SUN_ELEVATION=str(sun_elevation_deg), SUN_AZIMUTH=str(sun_azimuth_deg),
            BAND_TIME_OFFSETS_S=json.dumps(BAND_OFFSETS_S), ACQUISITION_TIME="2024-06-14T09:30:00Z",
        )
        for i, name in enumerate(("blue", "green", "red", "nir"), start=1):
            dst.set_band_description(i, name)
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": f"toy-s{seed}-vhr",
        "properties": {
            "datetime": "2024-06-14T09:30:00Z", "gsd": gsd_m, "proj:code": TOY_CRS,
            "view:sun_elevation": sun_elevation_deg, "view:sun_azimuth": sun_azimuth_deg, "view:off_nadir": 0.0,
            "citybaseline:sensor": "vhr", "citybaseline:band_time_offsets_s": BAND_OFFSETS_S,
            "citybaseline:scale": 0.0001,
        },
        "assets": {"image": {"href": "vhr.tif", "roles": ["data"]}},
    }
    (folder / "vhr.json").write_text(json.dumps(item, indent=2))
    b = gpd.GeoDataFrame(
        {"building_id": np.arange(len(buildings)), "height_m": heights, "height_origin": "drawn", "roof": "toy"},
        geometry=buildings, crs=TOY_CRS,
    )
    write_geoparquet(b, folder / "truth" / "buildings.parquet")
    vf = gpd.GeoDataFrame(vehicles, geometry="geometry", crs=TOY_CRS)
    vf.insert(0, "vehicle_id", np.arange(len(vf)))
    write_geoparquet(vf, folder / "truth" / "vehicles.parquet")
    return folder
