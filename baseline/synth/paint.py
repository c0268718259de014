"""Rasterising materials onto a reflectance canvas (float32, bands blue, green, red, NIR).

Each step burns geometry with GDAL (``Grid.mask`` / ``Grid.ids``) and colours
the burnt pixels from the material tables, vectorised over pixels: ground
cover, road paint, tree crowns lit as hemispheres, roofs (flat with a parapet
rim, or pitched with two facets lit by the sun), roof fixtures, and vehicles
with a car-like top view (body colour, dark windscreen and rear window, shaded
sides; buses with roof units, trucks with a cab).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from baseline.synth import materials
from baseline.synth.grid import Grid
from baseline.synth.noise import fbm, value_noise
from baseline.synth.scene_plan import ScenePlan

PAINT_COVER = 0.55   # a 0.15 m line covers about half of a 0.3 m pixel it touches


def sun_vector(elevation_deg: float, azimuth_deg: float) -> np.ndarray:
    """Unit vector (east, north, up) towards the sun."""
    e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
    return np.array([math.sin(a) * math.cos(e), math.cos(a) * math.cos(e), math.sin(e)])


def paint_ground(grid: Grid, plan: ScenePlan, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The canvas with ground cover and road paint, and the ground class raster (uint8)."""
    cls = np.zeros(grid.shape, dtype=np.uint8)
    for name, geoms in plan.ground.items():
        cls[grid.mask(geoms, all_touched=name == "rail")] = materials.GROUND_INDEX[name]
    canvas = np.empty((4, *grid.shape), dtype=np.float32)
    texture = 1.0 + 0.07 * fbm(grid, 12.0, seed, "ground", octaves=3)
    texture += 0.04 * value_noise(grid, 0.9, seed, "ground-fine")
    grass = cls == materials.GROUND_INDEX["grass"]
    texture[grass] += 0.08 * value_noise(grid, 3.0, seed, "grass")[grass]
    for b in range(4):
        canvas[b] = materials.GROUND_TABLE[:, b][cls]
        canvas[b] *= texture
    water = cls == materials.GROUND_INDEX["water"]
    canvas[:, water] = materials.GROUND_TABLE[materials.GROUND_INDEX["water"]][:, None]
    for geoms, colour in ((np.concatenate([plan.lane_marks, plan.bay_lines]), materials.PAINT),
                          (plan.tram_rails, materials.TRAM_RAIL)):
        lines = grid.mask(geoms, all_touched=True)
        for b in range(4):
            canvas[b][lines] = (1 - PAINT_COVER) * canvas[b][lines] + PAINT_COVER * colour[b]
    return canvas, cls


def paint_trees(canvas: np.ndarray, grid: Grid, plan: ScenePlan, seed: int) -> np.ndarray:
    """Tree crowns lit as hemispheres with leafy texture; returns the crown mask."""
    trees = plan.trees
    if trees.empty:
        return np.zeros(grid.shape, dtype=bool)
    x, y, r = trees["x"].to_numpy(), trees["y"].to_numpy(), trees["radius_m"].to_numpy()
    ids = grid.ids(shapely.buffer(shapely.points(x, y), r, quad_segs=6), np.arange(len(trees)) + 1)
    rows, cols = np.nonzero(ids)
    k = ids[rows, cols] - 1
    px, py = grid.xy(rows, cols)
    nx, ny = (px - x[k]) / r[k], (py - y[k]) / r[k]
    nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.05, 1.0))
    sun = sun_vector(plan.sun_elevation_deg, plan.sun_azimuth_deg)
    lit = np.clip(nx * sun[0] + ny * sun[1] + nz * sun[2], 0.0, None) / sun[2]
    leaves = value_noise(grid, 0.8, seed, "leaves")[rows, cols]
    factor = (0.45 + 0.6 * np.clip(lit, 0.0, 1.4)) * (1.0 + 0.18 * leaves)
    for b in range(4):
        canvas[b, rows, cols] = materials.TREE[b] * factor
    return ids > 0


def paint_roofs(canvas: np.ndarray, grid: Grid, plan: ScenePlan, seed: int) -> np.ndarray:
    """Roofs by material, per-building brightness, texture, parapet rims and pitched facets.

    Returns the roof id raster: 0 on the ground, else the building's row + 1.
    """
    b = plan.buildings
    if b.empty:
        return np.zeros(grid.shape, dtype=np.int32)
    roof_id = grid.ids(b.geometry.values, np.arange(len(b)) + 1)
    rows, cols = np.nonzero(roof_id)
    k = roof_id[rows, cols] - 1
    material = np.array([materials.ROOF_NAMES.index(r) for r in b["roof"]], dtype=np.int64)
    colour = materials.ROOF_TABLE[material] * b["brightness"].to_numpy(dtype=np.float32)[:, None]
    factor = 1.0 + 0.05 * value_noise(grid, 1.5, seed, "roof")[rows, cols]

    pitched = b["pitched"].to_numpy()[k]
    if pitched.any():
        factor[pitched] *= _facet_light(grid, plan, rows[pitched], cols[pitched], k[pitched])
    rim = _rim(roof_id)[rows, cols] & ~pitched
    values = colour[k] * factor[:, None].astype(np.float32)
    values[rim] = 0.5 * values[rim] + 0.5 * materials.ROOF_TABLE[materials.ROOF_NAMES.index("grey_concrete")]
    for band in range(4):
        canvas[band, rows, cols] = values[:, band]
    return roof_id


def _facet_light(grid: Grid, plan: ScenePlan, rows: np.ndarray, cols: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Brightness of each pixel of a gable roof (35 degree pitch, ridge on the long axis) relative to flat."""
    b = plan.buildings
    c = shapely.get_coordinates(shapely.centroid(shapely.minimum_rotated_rectangle(b.geometry.values)))
    ridge = np.radians(b["ridge_deg"].to_numpy())
    ax, ay = np.cos(ridge), -np.sin(ridge)     # across the ridge
    px, py = grid.xy(rows, cols)
    side = np.sign((px - c[k, 0]) * ax[k] + (py - c[k, 1]) * ay[k])
    tilt = math.radians(35.0)
    sun = sun_vector(plan.sun_elevation_deg, plan.sun_azimuth_deg)
    lit = (side * math.sin(tilt) * (ax[k] * sun[0] + ay[k] * sun[1]) + math.cos(tilt) * sun[2]) / sun[2]
    return np.clip(lit, 0.35, 1.6).astype(np.float32)


def _rim(ids: np.ndarray) -> np.ndarray:
    """Pixels of a region whose 4-neighbour belongs to another region (roof edges)."""
    rim = np.zeros(ids.shape, dtype=bool)
    dy = ids[1:] != ids[:-1]
    dx = ids[:, 1:] != ids[:, :-1]
    rim[1:] |= dy
    rim[:-1] |= dy
    rim[:, 1:] |= dx
    rim[:, :-1] |= dx
    return rim & (ids > 0)


def paint_fixtures(canvas: np.ndarray, grid: Grid, plan: ScenePlan) -> np.ndarray:
    """Vents and AC units on flat roofs; returns their mask."""
    if plan.fixtures.empty:
        return np.zeros(grid.shape, dtype=bool)
    mask = grid.mask(plan.fixtures.geometry.values)
    for band in range(4):
        canvas[band][mask] = materials.FIXTURE[band]
    return mask


def paint_vehicles(canvas: np.ndarray, bands: list[int], grid: Grid, vehicles: gpd.GeoDataFrame,
                   boxes: np.ndarray, shade: np.ndarray | None = None) -> np.ndarray:
    """Vehicles seen from above into ``bands`` of the canvas; returns their mask.

    ``boxes`` are the vehicles' boxes where this band sees them (moving ones are
    displaced by velocity x band time offset). Pixels in ``shade`` (a building's
    or tree's shadow) get the shadow ratio.
    """
    if len(vehicles) == 0:
        return np.zeros(grid.shape, dtype=bool)
    ids = grid.ids(boxes, np.arange(len(vehicles)) + 1)
    rows, cols = np.nonzero(ids)
    k = ids[rows, cols] - 1
    centre = shapely.get_coordinates(shapely.centroid(boxes))
    heading = np.radians(vehicles["heading_deg"].to_numpy())
    fx, fy = np.sin(heading)[k], np.cos(heading)[k]
    px, py = grid.xy(rows, cols)
    dx, dy = px - centre[k, 0], py - centre[k, 1]
    u = (dx * fx + dy * fy) / (vehicles["length_m"].to_numpy()[k] / 2.0)   # -1 rear .. 1 front
    w = (dx * fy - dy * fx) / (vehicles["width_m"].to_numpy()[k] / 2.0)    # -1 left .. 1 right
    values = _vehicle_look(u, w, k, vehicles)
    if shade is not None:
        values[shade[rows, cols]] *= materials.SHADOW_RATIO
    # rounded corners: the corner pixels keep what lies under the vehicle
    body = (np.abs(u) < 0.86) | (np.abs(w) < 0.62) | ((np.abs(u) - 0.86) ** 2 / 0.14**2 + (np.abs(w) - 0.62) ** 2 / 0.38**2 <= 1.0)
    for band in bands:
        canvas[band, rows[body], cols[body]] = values[body, band]
    return ids > 0


def _vehicle_look(u: np.ndarray, w: np.ndarray, k: np.ndarray, vehicles: gpd.GeoDataFrame) -> np.ndarray:
    """Reflectance of each vehicle pixel from its position (u along, w across) on the vehicle."""
    body = materials.VEHICLE_COLOUR_TABLE[vehicles["colour"].to_numpy()[k]].copy()
    au, aw = np.abs(u), np.abs(w)
    shade = np.ones(len(u), dtype=np.float32)
    shade[aw > 0.8] = 0.82
    shade[au > 0.92] = 0.8
    large = (vehicles["class"].to_numpy() == "large")[k]
    bus = large & (vehicles["vehicle_id"].to_numpy()[k] % 2 == 0)
    truck = large & ~bus
    car = ~large
    glass = car & (aw < 0.86) & (((u > 0.12) & (u < 0.42)) | ((u > -0.78) & (u < -0.55)))
    glass |= large & (u > 0.93) & (aw < 0.9)
    unit = bus & (aw < 0.55) & (((u > 0.05) & (u < 0.3)) | ((u > -0.45) & (u < -0.2)))
    gap = truck & (u > 0.68) & (u < 0.73)
    trailer = truck & (u <= 0.68)
    shade[car & (u > -0.55) & (u < 0.12) & (aw < 0.8)] = 1.05  # roof panel catches the sun
    body[trailer] = materials.VEHICLE_COLOUR_TABLE[0]
    body[glass] = materials.GLASS
    body[unit] = materials.FIXTURE
    body[gap] = materials.GLASS * 1.5
    return body * shade[:, None]
