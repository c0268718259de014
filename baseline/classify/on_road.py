"""On the road or parked: explicit rules over carriageways, kerbs and car parks.

Each vehicle's centre is placed in one map context, in this order:
1. ``car_park``: inside an ``amenity=parking`` polygon -> parked;
2. ``road``: inside a carriageway (an OSM centreline buffered to its lanes) ->
   on the road when the vehicle is moving, or when its axis lies within
   ``max_heading_difference_deg`` of the road's local bearing (a car queued at
   a junction is on the road, not moving); a stopped vehicle across the road's
   axis is taken as parked (perpendicular kerb parking reaching into the road);
3. ``kerb``: inside a kerb strip beside the carriageway -> parked, unless it is
   moving (then it is on the road: the carriageway was drawn too narrow);
4. ``off_road``: anywhere else (courtyards, driveways) -> parked, unless moving.

"Moving" and "on the road" stay apart: the first is measured from band timing,
the second from where the vehicle is. The context is returned so counts per
context (and their accuracy) can be reported.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from baseline.context.osm import MapContext
from baseline.core.geo import axial_difference_deg, require_same_crs

ROAD_CONTEXTS = ("road", "kerb", "car_park", "off_road")


def _first_hit(tree_geoms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Index into ``tree_geoms`` of a geometry containing each point, -1 where none."""
    hit = np.full(len(points), -1, dtype=np.int64)
    if len(tree_geoms) == 0 or len(points) == 0:
        return hit
    tree = shapely.STRtree(tree_geoms)
    pt_idx, geom_idx = tree.query(points, predicate="within")
    # keep the first containing geometry per point
    order = np.argsort(pt_idx, kind="stable")
    pt_idx, geom_idx = pt_idx[order], geom_idx[order]
    first = np.unique(pt_idx, return_index=True)[1]
    hit[pt_idx[first]] = geom_idx[first]
    return hit


def classify_vehicles(
    vehicles: gpd.GeoDataFrame, context: MapContext, *, max_heading_difference_deg: float = 30.0
) -> gpd.GeoDataFrame:
    """Copy of ``vehicles`` with ``on_road`` (bool) and ``context`` set.

    ``vehicles`` needs ``geometry``, ``heading_deg`` and ``moving``.
    """
    require_same_crs("vehicles vs map context", vehicles.crs, context.crs)
    out = vehicles.copy()
    n = len(out)
    if n == 0:
        out["on_road"] = np.zeros(0, dtype=bool)
        out["context"] = np.zeros(0, dtype=object)
        return out
    centres = shapely.centroid(out.geometry.values)
    moving = out["moving"].fillna(False).to_numpy(dtype=bool)

    in_park = _first_hit(context.car_parks.geometry.values, centres) >= 0
    road_hit = _first_hit(context.carriageways.geometry.values, centres)
    in_road = road_hit >= 0
    in_kerb = _first_hit(context.kerb_strips.geometry.values, centres) >= 0

    road_bearing = np.full(n, np.nan)
    road_bearing[in_road] = context.carriageways["bearing_deg"].to_numpy()[road_hit[in_road]]
    aligned = axial_difference_deg(out["heading_deg"].to_numpy(dtype=float), road_bearing) <= max_heading_difference_deg

    label = np.where(in_park, "car_park", np.where(in_road, "road", np.where(in_kerb, "kerb", "off_road")))
    on_road = np.where(label == "car_park", False, np.where(label == "road", moving | aligned, moving))
    out["on_road"] = on_road.astype(bool)
    out["context"] = label.astype(object)
    return out
