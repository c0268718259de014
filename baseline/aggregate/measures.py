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


@dataclass(frozen=True)
class Stratum:
    """Vehicles of one class, on the road or not, moving or not, at the kerb or not.

    ``kerbside``: the vehicle stands in a kerb strip, where on-road or parked
    was decided by the kerb rule (classify.on_road); those are counted as a
    figure of their own, since that is where the decision is least certain.
    """

    vehicle_class: str
    on_road: bool
    moving: bool
    kerbside: bool = False

    @property
    def contexts(self) -> tuple[str, ...]:
        """Rate contexts to look up, most specific first."""
        place = "on_road" if self.on_road else "parked"
        where = ("kerb", place) if self.kerbside else (place,)
        return ("moving", *where) if self.moving else where


def vehicle_counts(
    zone: np.ndarray, vehicle_class: np.ndarray, on_road: np.ndarray, moving: np.ndarray,
    strata: tuple[Stratum, ...], n_zones: int, kerbside: np.ndarray | None = None,
) -> np.ndarray:
    """Detections per zone and stratum, shape (zones, strata)."""
    counts = np.zeros((n_zones, len(strata)), dtype=np.int64)
    position = {s: i for i, s in enumerate(strata)}
    keep = zone >= 0
    kerb = np.zeros(len(zone), dtype=bool) if kerbside is None else kerbside
    col = np.array(
        [position[Stratum(str(c), bool(o), bool(m), bool(k))]
         for c, o, m, k in zip(vehicle_class, on_road, moving, kerb, strict=True)],
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
