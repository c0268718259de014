"""What goes where: building heights and roofs, roof fixtures, trees, ground cover, traffic.

The plan is made for the whole scene from the seed alone, before any pixel is
drawn, so a crop (``RenderParams.bbox``) draws exactly what the full render
draws there, and the truth tables are the plan itself.

Heights come from the map where it has them: OSM ``height`` (origin
``osm_height``) or a footprints file's height column (``file``); else OSM
``building:levels`` times the storey height plus a roof allowance
(``osm_levels``); else a draw from :class:`~baseline.synth.params.HeightPrior`
(``drawn``), lower for sheds, kiosks and canopies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from baseline.context.osm import KERB_STRIP_WIDTH_M, LANE_WIDTH_M
from baseline.synth import materials, roadmarks, traffic
from baseline.synth.geometry import largest_polygon, oriented_boxes
from baseline.synth.inputs import SceneInputs
from baseline.synth.params import HeightPrior, RenderParams
from baseline.synth.streams import stream

SMALL_KINDS = frozenset({"garage", "garages", "shed", "kiosk", "hut", "roof", "carport", "toilets", "pavilion"})
SIDEWALK_WIDTH_M = 2.5
MAX_GABLE_AREA_M2 = 1200.0  # larger footprints get flat roofs
BALLAST_HALF_M = 1.9     # half width of a railway track bed
RAIL_GAUGE_M = 1.524     # Finnish broad gauge
TRAM_GAUGE_M = 1.0       # Helsinki trams run on metre gauge
TREE_SPACING_M2 = 90.0
"""One tree per this much open vegetated ground, on average."""


@dataclass(frozen=True)
class ScenePlan:
    """Everything the painter draws, in the scene's UTM CRS.

    Attributes:
        crs, aoi: CRS and in-image (valid) area.
        bounds: the whole scene's extent, snapped outwards to 10 m.
        sun_elevation_deg, sun_azimuth_deg: sun position.
        buildings: drawn footprints (non-overlapping) with the truth columns and
            ``pitched``, ``ridge_deg`` and ``brightness`` for drawing.
        fixtures: small roof boxes (vents, AC units, stair housings) with ``height_m``.
        trees: ``x``, ``y``, ``radius_m``, ``height_m`` of tree crowns.
        ground: geometry arrays per ground material, in drawing order.
        lane_marks, bay_lines: road paint polygons.
        tram_rails: thin polygons of tram rails set in the streets.
        vehicles: truth columns plus ``vx``, ``vy`` (m/s), ``height_m``, ``colour``.
        roads: the roads truth table (one carriageway per segment).
    """

    crs: CRS
    aoi: shapely.Geometry
    bounds: tuple[float, float, float, float]
    sun_elevation_deg: float
    sun_azimuth_deg: float
    buildings: gpd.GeoDataFrame
    fixtures: gpd.GeoDataFrame
    trees: pd.DataFrame
    ground: dict[str, np.ndarray]
    lane_marks: np.ndarray
    tram_rails: np.ndarray
    bay_lines: np.ndarray
    vehicles: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame


def plan_scene(inputs: SceneInputs, params: RenderParams) -> ScenePlan:
    """Decide every object of the scene from ``inputs`` and the seed in ``params``."""
    crs = inputs.crs
    xmin, ymin, xmax, ymax = inputs.aoi.bounds
    bounds = (math.floor(xmin / 10) * 10.0, math.floor(ymin / 10) * 10.0,
              math.ceil(xmax / 10) * 10.0, math.ceil(ymax / 10) * 10.0)
    ctx = inputs.context
    buildings = plan_buildings(inputs.buildings, params.seed, params.height_prior)
    carriageways = _polygonal(ctx["carriageways"].geometry.values)
    kerbs = _polygonal(ctx["kerb_strips"].geometry.values)
    car_parks = _polygonal(ctx["car_parks"].geometry.values)
    vegetation = _polygonal(ctx["vegetation"].geometry.values)
    water = np.concatenate([_polygonal(ctx["water"].geometry.values), _polygonal(inputs.extras["sea"])])
    rails = inputs.extras["rails"]
    ballast = shapely.buffer(rails, BALLAST_HALF_M, cap_style="flat") if len(rails) else np.empty(0, dtype=object)
    platforms = _polygonal(inputs.extras["platforms"])

    vehicles, bays = traffic.plan_traffic(
        ctx["road_segments"], carriageways, kerbs, car_parks,
        buildings.geometry.values, inputs.aoi, params.seed, _local_hour(params, inputs),
        parking=traffic.PARKING[params.parking],
    )
    trees = plan_trees(vegetation, buildings.geometry.values,
                       np.concatenate([carriageways, kerbs, car_parks, ballast, platforms]), params.seed)
    fixtures = plan_fixtures(buildings, params.seed)
    segments = ctx["road_segments"]
    return ScenePlan(
        crs=crs, aoi=inputs.aoi, bounds=bounds,
        sun_elevation_deg=inputs.sun_elevation_deg, sun_azimuth_deg=inputs.sun_azimuth_deg,
        buildings=buildings, fixtures=fixtures, trees=trees,
        ground={
            "grass": vegetation,
            "water": water,
            "ballast": ballast,
            "rail": _rail_pairs(rails, RAIL_GAUGE_M),
            "sidewalk": np.concatenate([platforms, _sidewalks(segments)]),
            "car_park": car_parks,
            "kerb": kerbs,
            "road": carriageways,
        },
        lane_marks=roadmarks.lane_dashes(segments, ctx["carriageways"].geometry.values),
        tram_rails=_rail_pairs(inputs.extras["trams"], TRAM_GAUGE_M),
        bay_lines=roadmarks.bay_lines(bays),
        vehicles=vehicles,
        roads=gpd.GeoDataFrame(
            {
                "road_id": ctx["carriageways"]["road_id"].to_numpy(dtype="int64"),
                "highway": ctx["carriageways"]["highway"].astype(str).to_numpy(),
                "lanes": ctx["carriageways"]["lanes"].to_numpy(dtype="int64"),
                "oneway": ctx["carriageways"]["oneway"].to_numpy(dtype=bool),
                "bearing_deg": ctx["carriageways"]["bearing_deg"].to_numpy(dtype=float),
            },
            geometry=ctx["carriageways"].geometry.values, crs=crs,
        ),
    )


def plan_buildings(raw: gpd.GeoDataFrame, seed: int, prior: HeightPrior) -> gpd.GeoDataFrame:
    """Heights, roofs and non-overlapping drawn footprints of the buildings.

    Where footprints overlap, the taller one keeps the overlap (it is the roof a
    camera overhead sees); footprints left smaller than 4 m2 are dropped.
    """
    rng = stream(seed, "buildings")
    n = len(raw)
    draws = np.exp(rng.normal(math.log(prior.median_m), prior.log_sigma, n))
    small_draws = rng.uniform(3.0, 5.5, n)
    roof_pick = rng.choice(len(materials.ROOF_NAMES), size=n, p=materials.ROOF_WEIGHTS)
    brightness = rng.normal(1.0, 0.07, n).clip(0.8, 1.2)

    known = raw["height_m"].to_numpy(dtype=float)
    levels = raw["levels"].to_numpy(dtype=float)
    kind = raw["kind"].astype(str).to_numpy()
    height = np.clip(draws, prior.min_m, prior.max_m)
    small = np.isin(kind, list(SMALL_KINDS)) | (raw.geometry.area.to_numpy() < 40.0)
    height = np.where(small, small_draws, height)
    origin = np.full(n, "drawn", dtype=object)
    from_levels = np.isfinite(levels) & (levels > 0)
    height = np.where(from_levels, levels * prior.storey_m + prior.roof_allowance_m, height)
    origin[from_levels] = "osm_levels"
    has_known = np.isfinite(known) & (known > 0)
    height = np.where(has_known, known, height)
    origin[has_known] = raw["known_origin"].to_numpy()[has_known]

    roof = np.asarray(materials.ROOF_NAMES, dtype=object)[roof_pick]
    # tall modern blocks and big footprints have flat roofs (one gable cannot span them)
    too_big = (height > 35.0) | (raw.geometry.area.to_numpy() > MAX_GABLE_AREA_M2)
    roof = np.where(too_big & np.isin(roof, list(materials.PITCHED_ROOFS)), "grey_concrete", roof)

    geoms = _disjoint(shapely.make_valid(raw.geometry.values), height)
    frame = gpd.GeoDataFrame(
        {
            "building_id": np.arange(n, dtype="int64"),  # the map's row: stable across seeds
            "height_m": np.round(height, 2),
            "height_origin": origin.astype(str),
            "roof": roof.astype(str),
            "pitched": np.isin(roof, list(materials.PITCHED_ROOFS)),
            "ridge_deg": _long_axis_deg(geoms),
            "brightness": brightness,
        },
        geometry=geoms, crs=raw.crs,
    )
    return frame[~frame.geometry.is_empty & (frame.geometry.area >= 4.0)].reset_index(drop=True)


def _disjoint(geoms: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Footprints cut so none overlaps a taller one; each left as its largest polygon."""
    out = geoms.copy()
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    taller = (a != b) & ((height[b] > height[a]) | ((height[b] == height[a]) & (b < a)))
    for i in np.unique(a[taller]):
        cutters = b[taller & (a == i)]
        out[i] = shapely.difference(out[i], shapely.union_all(geoms[cutters]))
    return np.array([largest_polygon(g) for g in out], dtype=object)


def _long_axis_deg(geoms: np.ndarray) -> np.ndarray:
    """Compass bearing (0 to 180) of each footprint's minimum rotated rectangle's long side."""
    if len(geoms) == 0:
        return np.zeros(0)
    rect = shapely.minimum_rotated_rectangle(geoms)
    coords = shapely.get_coordinates(shapely.get_exterior_ring(rect), return_index=False)
    counts = shapely.get_num_coordinates(shapely.get_exterior_ring(rect))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.zeros(len(geoms))
    ok = counts >= 4
    p0, p1, p2 = coords[starts[ok]], coords[starts[ok] + 1], coords[starts[ok] + 2]
    e1, e2 = p1 - p0, p2 - p1
    long_edge = np.where((np.hypot(*e1.T) >= np.hypot(*e2.T))[:, None], e1, e2)
    out[ok] = np.mod(np.degrees(np.arctan2(long_edge[:, 0], long_edge[:, 1])), 180.0)
    return out


def plan_fixtures(buildings: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Vents, AC units and stair housings on flat roofs: small, raised, NOT vehicles."""
    rng = stream(seed, "fixtures")
    flat = (~buildings["pitched"].to_numpy()) & (buildings.geometry.area.to_numpy() > 60.0)
    inner = shapely.buffer(buildings.geometry.values, -1.5)
    count = np.where(flat, rng.poisson(buildings.geometry.area.to_numpy() / 260.0), 0).clip(0, 25)
    owner = np.repeat(np.arange(len(buildings)), count * 4)
    if len(owner) == 0:
        return gpd.GeoDataFrame({"height_m": []}, geometry=[], crs=buildings.crs)
    bx = shapely.bounds(inner)
    x = rng.uniform(bx[owner, 0], bx[owner, 2])
    y = rng.uniform(bx[owner, 1], bx[owner, 3])
    kind = rng.choice(3, size=len(owner), p=(0.7, 0.2, 0.1))
    size = np.choose(kind, [rng.uniform(0.8, 1.6, len(owner)), rng.uniform(0.5, 0.8, len(owner)),
                            rng.uniform(2.5, 4.0, len(owner))])
    height = np.choose(kind, [rng.uniform(0.8, 1.5, len(owner)), rng.uniform(0.5, 1.0, len(owner)),
                              rng.uniform(2.5, 3.0, len(owner))])
    shapely.prepare(inner)
    inside = shapely.contains_xy(inner[owner], x, y)
    # keep at most `count` per building, in draw order
    rank = pd.Series(inside.astype(int)).groupby(owner).cumsum().to_numpy()
    keep = inside & (rank <= count[owner])
    heading = buildings["ridge_deg"].to_numpy()[owner]
    boxes = oriented_boxes(x[keep], y[keep], heading[keep], size[keep], size[keep] * 0.8)
    boxes = shapely.intersection(boxes, buildings.geometry.values[owner[keep]])
    frame = gpd.GeoDataFrame({"height_m": height[keep], "building": owner[keep]}, geometry=boxes,
                             crs=buildings.crs)
    return frame[~frame.geometry.is_empty].reset_index(drop=True)


def plan_trees(vegetation: np.ndarray, buildings: np.ndarray, paved: np.ndarray, seed: int) -> pd.DataFrame:
    """Tree crowns in vegetated ground, never over roads, kerbs, car parks or roofs.

    Small vegetation patches (single mapped trees) get one crown at their centre;
    larger ones get crowns scattered at :data:`TREE_SPACING_M2`.
    """
    rng = stream(seed, "trees")
    empty = pd.DataFrame({"x": [], "y": [], "radius_m": [], "height_m": []})
    if len(vegetation) == 0:
        return empty
    area = shapely.area(vegetation)
    single = area < 60.0
    c = shapely.get_coordinates(shapely.centroid(vegetation[single]))
    n = rng.poisson(area[~single] / TREE_SPACING_M2)
    big = vegetation[~single]
    owner = np.repeat(np.arange(len(big)), n)
    bx = shapely.bounds(big)
    x = rng.uniform(bx[owner, 0], bx[owner, 2])
    y = rng.uniform(bx[owner, 1], bx[owner, 3])
    shapely.prepare(big)
    inside = shapely.contains_xy(big[owner], x, y)
    x = np.concatenate([c[:, 0], x[inside]])
    y = np.concatenate([c[:, 1], y[inside]])
    radius = rng.uniform(2.0, 4.5, len(x))
    height = rng.uniform(8.0, 16.0, len(x))
    points = shapely.points(x, y)
    for obstacles, margin in ((paved, 0.4), (buildings, 0.0)):
        if len(obstacles):
            _, dist = shapely.STRtree(obstacles).query_nearest(points, return_distance=True, all_matches=False)
            radius = np.minimum(radius, dist - margin) if margin else np.where(dist > 0, radius, 0.0)
    keep = radius >= 1.5
    return pd.DataFrame({"x": x[keep], "y": y[keep], "radius_m": radius[keep], "height_m": height[keep]})


def _sidewalks(segments: gpd.GeoDataFrame) -> np.ndarray:
    """Pavement beside every carriageway (and beyond its kerb strips)."""
    if segments.empty:
        return np.empty(0, dtype=object)
    half = segments["lanes"].to_numpy() * LANE_WIDTH_M / 2.0
    width = half + SIDEWALK_WIDTH_M + np.where(segments["kerb_parking"].to_numpy(), KERB_STRIP_WIDTH_M, 0.0)
    return shapely.buffer(segments.geometry.values, width, cap_style="round")


def _rail_pairs(lines: np.ndarray, gauge: float) -> np.ndarray:
    """Both rails of each track as thin polygons, ``gauge`` apart."""
    if len(lines) == 0:
        return np.empty(0, dtype=object)
    lines = shapely.get_parts(np.asarray(lines))
    rails = [shapely.offset_curve(lines, side * gauge / 2.0) for side in (1, -1)]
    return shapely.buffer(np.concatenate(rails), 0.08, cap_style="flat")


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Valid polygons only (lines and points dropped)."""
    geoms = shapely.make_valid(np.asarray(geoms))
    if len(geoms) == 0:
        return np.empty(0, dtype=object)
    geoms = shapely.get_parts(geoms)
    return geoms[shapely.get_type_id(geoms) == 3]


def _local_hour(params: RenderParams, inputs: SceneInputs) -> float:
    """Local mean solar hour at the scene (traffic follows the local day)."""
    t = params.time
    return (t.hour + t.minute / 60.0 + inputs.centre_lonlat[0] / 15.0) % 24.0
