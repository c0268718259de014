"""The zones indicators are computed over: the city (its AOI), districts, H3 cells.

Every object (building, vehicle) is assigned to exactly one zone of a level by
its centroid, so the cells' counts add up to the city's and nothing is counted
twice; a building straddling two cells counts, with its whole footprint, in the
cell that holds its centroid. H3 cells are assigned by the H3 index of the
centroid's latitude/longitude (exact H3 membership), and drawn as their
hexagons projected from latitude/longitude to the scene CRS. Each zone also
carries its *land*: the part of it inside the AOI, whose area is the
denominator of ``coverage_ratio``.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import h3
import numpy as np
import shapely
from pyproj import CRS, Transformer

from baseline.errors import MissingColumnError

LEVEL_CITY = "city"
LEVEL_DISTRICT = "district"
LEVEL_H3 = "h3"


@dataclass(frozen=True)
class Zones:
    """The zones of one level, in a fixed order.

    Attributes:
        level: ``city``, ``district`` or ``h3``.
        ids: zone ids (city name, district name, H3 index), one per zone.
        geometry: each zone's full shape in the scene CRS.
        land: each zone's part inside the AOI.
        area_m2: area of ``land``.
        overlapping: whether zones may overlap (districts from a file may).
    """

    level: str
    ids: tuple[str, ...]
    geometry: np.ndarray
    land: np.ndarray
    area_m2: np.ndarray
    overlapping: bool = False

    def __len__(self) -> int:
        return len(self.ids)


def _lonlat(points: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    xy = shapely.get_coordinates(points)
    if len(xy) == 0:
        return np.zeros(0), np.zeros(0)
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return np.asarray(lon), np.asarray(lat)


def _land(geometry: np.ndarray, aoi: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
    land = shapely.intersection(geometry, aoi)
    return land, shapely.area(land)


def city_zones(aoi: shapely.Geometry, city: str) -> Zones:
    """The city as a single zone: its AOI."""
    geometry = np.array([aoi], dtype=object)
    return Zones(LEVEL_CITY, (city,), geometry, geometry, np.array([aoi.area]))


def district_zones(districts: gpd.GeoDataFrame, aoi: shapely.Geometry, crs: CRS) -> Zones:
    """One zone per row of ``districts`` (needs a ``district`` name column), reprojected to ``crs``."""
    if "district" not in districts.columns:
        raise MissingColumnError("districts", "district", districts.columns)
    frame = districts.to_crs(crs) if districts.crs is not None and CRS.from_user_input(districts.crs) != crs else districts
    geometry = shapely.make_valid(np.asarray(frame.geometry.values, dtype=object))
    land, area = _land(geometry, aoi)
    return Zones(LEVEL_DISTRICT, tuple(frame["district"].astype(str)), geometry, land, area, overlapping=True)


def h3_cells_of(points: np.ndarray, crs: CRS, resolution: int) -> np.ndarray:
    """H3 index (string) of each point, from its latitude/longitude."""
    lon, lat = _lonlat(points, crs)
    return np.array([h3.latlng_to_cell(y, x, resolution) for x, y in zip(lon, lat, strict=True)], dtype=object)


def h3_zones(aoi: shapely.Geometry, crs: CRS, resolution: int, points: np.ndarray | None = None) -> Zones:
    """Every H3 cell at ``resolution`` that overlaps the AOI (or holds one of ``points``), sorted by index.

    The AOI is grown by two cell edges before H3 covers it by cell centres, and
    cells that then miss the AOI are dropped, so border cells whose centre lies
    outside the AOI are kept.
    """
    edge = h3.average_hexagon_edge_length(resolution, unit="m")
    grown = gpd.GeoSeries([aoi.buffer(2.0 * edge)], crs=crs).to_crs(4326).iloc[0]
    cells = set(h3.geo_to_cells(grown, resolution))
    if points is not None and len(points):
        cells |= set(h3_cells_of(points, crs, resolution))
    ids = sorted(cells)
    rings = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ids]
    geometry = np.asarray(gpd.GeoSeries(rings, crs=4326).to_crs(crs).values, dtype=object)
    land, area = _land(geometry, aoi)
    keep = area > 0
    if points is not None and len(points):
        keep |= np.isin(np.asarray(ids, dtype=object), h3_cells_of(points, crs, resolution))
    idx = np.flatnonzero(keep)
    return Zones(LEVEL_H3, tuple(ids[i] for i in idx), geometry[idx], land[idx], area[idx])


def assign(zones: Zones, points: np.ndarray, crs: CRS, h3_resolution: int | None = None) -> np.ndarray:
    """Position in ``zones`` of the zone holding each point; -1 where none.

    H3 zones use the point's H3 index; other levels the first zone whose shape
    covers the point (a point on a shared border goes to the first district).
    """
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(zones) == 0:
        return out
    if zones.level == LEVEL_H3:
        if h3_resolution is None:
            raise ValueError("h3_resolution is needed to assign points to H3 cells")
        position = {cell: i for i, cell in enumerate(zones.ids)}
        cells = h3_cells_of(points, crs, h3_resolution)
        return np.array([position.get(c, -1) for c in cells], dtype=np.int64)
    tree = shapely.STRtree(zones.geometry)
    pt, zone = tree.query(points, predicate="intersects")
    order = np.lexsort((zone, pt))
    pt, zone = pt[order], zone[order]
    first = np.unique(pt, return_index=True)[1]
    out[pt[first]] = zone[first]
    return out
