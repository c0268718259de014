"""Raw sums per zone: buildings, vehicles by stratum, road length.

Objects come with the position of their zone (from ``zones.assign``); these
functions only add up. Nothing here knows about privacy, capabilities or
uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from baseline.context.osm import LANE_WIDTH_M, STOREY_HEIGHT_M

POLYGON_TYPES = (3, 6)  # shapely type ids: Polygon, MultiPolygon


def floors_of(height_m: np.ndarray) -> np.ndarray:
    """Storeys of a building of ``height_m``: round(height / 3.2) half up, at least 1."""
    return np.maximum(1.0, np.floor(np.asarray(height_m, dtype=float) / STOREY_HEIGHT_M + 0.5))


def building_measures(zone: np.ndarray, area_m2: np.ndarray, height_m: np.ndarray, n_zones: int) -> dict[str, np.ndarray]:
    """Per zone: count, footprint, height statistics, built volume and floor area.

    Buildings without a height (NaN) count in ``building_count`` and the
    footprint but not in the height statistics, the volume or the floor area;
    ``buildings_without_height`` says how many there were.
    """
    frame = pd.DataFrame({"zone": zone, "area": area_m2, "height": height_m})
    frame = frame[frame["zone"] >= 0]
    index = pd.RangeIndex(n_zones)
    grouped = frame.groupby("zone")
    has_h = frame[frame["height"].notna()].copy()
    has_h["volume"] = has_h["area"] * has_h["height"]
    has_h["floor_area"] = has_h["area"] * floors_of(has_h["height"].to_numpy())
    by_h = has_h.groupby("zone")
    out = {
        "building_count": grouped.size().reindex(index, fill_value=0).to_numpy(dtype=np.int64),
        "footprint_area_m2": grouped["area"].sum().reindex(index, fill_value=0.0).to_numpy(dtype=float),
        "height_mean_m": by_h["height"].mean().reindex(index).to_numpy(dtype=float),
        "height_median_m": by_h["height"].median().reindex(index).to_numpy(dtype=float),
        "height_p90_m": by_h["height"].quantile(0.9).reindex(index).to_numpy(dtype=float),
        "height_max_m": by_h["height"].max().reindex(index).to_numpy(dtype=float),
        "built_volume_m3": by_h["volume"].sum().reindex(index, fill_value=0.0).to_numpy(dtype=float),
        "floor_area_m2": by_h["floor_area"].sum().reindex(index, fill_value=0.0).to_numpy(dtype=float),
    }
    out["buildings_without_height"] = out["building_count"] - by_h.size().reindex(index, fill_value=0).to_numpy()
    return out


# map contexts with a measured rate of their own (the card's per_context); a
# vehicle elsewhere (a carriageway, a courtyard, or no map) has place ""
RATED_PLACES = ("", "kerb", "car_park")


@dataclass(frozen=True)
class Stratum:
    """Vehicles of one class, on the road or not, moving or not, in one rated place.

    ``place``: ``kerb`` (a kerb strip, where on-road or parked was decided by
    the kerb rule of classify.on_road, counted as a figure of its own since that
    is where the decision is least certain), ``car_park`` (an ``amenity=parking``
    polygon, where tightly packed rows are hardest to separate), or ``""``
    anywhere else. Each place is looked up in the card's ``per_context`` rates
    before the on-road/parked rate.
    """

    vehicle_class: str
    on_road: bool
    moving: bool
    place: str = ""

    @property
    def kerbside(self) -> bool:
        """The vehicle stands in a kerb strip."""
        return self.place == "kerb"

    @property
    def contexts(self) -> tuple[str, ...]:
        """Rate contexts to look up, most specific first."""
        base = "on_road" if self.on_road else "parked"
        where = (self.place, base) if self.place else (base,)
        return ("moving", *where) if self.moving else where


def rated_place(context: np.ndarray | None, n: int) -> np.ndarray:
    """Each vehicle's :class:`Stratum` place from its map ``context`` column (None: no map context)."""
    if context is None:
        return np.full(n, "", dtype=object)
    context = np.asarray(context).astype(str)
    return np.where(np.isin(context, RATED_PLACES[1:]), context, "").astype(object)


def vehicle_counts(
    zone: np.ndarray, vehicle_class: np.ndarray, on_road: np.ndarray, moving: np.ndarray,
    strata: tuple[Stratum, ...], n_zones: int, place: np.ndarray | None = None,
) -> np.ndarray:
    """Detections per zone and stratum, shape (zones, strata); ``place`` as :func:`rated_place` gives it."""
    counts = np.zeros((n_zones, len(strata)), dtype=np.int64)
    position = {s: i for i, s in enumerate(strata)}
    keep = zone >= 0
    places = np.full(len(zone), "", dtype=object) if place is None else place
    col = np.array(
        [position[Stratum(str(c), bool(o), bool(m), str(p))]
         for c, o, m, p in zip(vehicle_class, on_road, moving, places, strict=True)],
        dtype=np.int64,
    )
    np.add.at(counts, (zone[keep], col[keep]), 1)
    return counts


def road_measures(
    geometry: np.ndarray, lanes: np.ndarray, land: np.ndarray, lane_width_m: float = LANE_WIDTH_M
) -> tuple[np.ndarray, np.ndarray]:
    """Road length and lane length (km) of each zone's land.

    Centrelines (LineStrings) are clipped to the zone and measured. Carriageway
    polygons have no centreline, so their length is their clipped area divided
    by their width (``lanes x lane_width_m``, the width ``context.osm`` draws).
    """
    length = np.zeros(len(land))
    lane_km = np.zeros(len(land))
    if len(geometry) == 0 or len(land) == 0:
        return length, lane_km
    tree = shapely.STRtree(geometry)
    zone_idx, road_idx = tree.query(land, predicate="intersects")
    if len(zone_idx) == 0:
        return length, lane_km
    pieces = shapely.intersection(geometry[road_idx], land[zone_idx])
    road_lanes = np.asarray(lanes, dtype=float)[road_idx]
    is_polygon = np.isin(shapely.get_type_id(geometry[road_idx]), POLYGON_TYPES)
    metres = np.where(
        is_polygon,
        shapely.area(pieces) / (road_lanes * lane_width_m),
        shapely.length(pieces),
    )
    np.add.at(length, zone_idx, metres / 1000.0)
    np.add.at(lane_km, zone_idx, metres * road_lanes / 1000.0)
    return length, lane_km
