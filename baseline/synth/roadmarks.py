"""Road paint: dashed lines between lanes, and the lines between car-park bays.

Dashes are 3 m long every 9 m (Finnish urban lane lines), 0.15 m wide, laid on
each lane boundary of a segment with the phase carried along consecutive
segments of the same road so the pattern runs on round bends. Dashes that
reach into another road's carriageway (a junction) are left out.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from baseline.context.osm import LANE_WIDTH_M
from baseline.synth.geometry import oriented_boxes, segment_runs

DASH_M, PERIOD_M, LINE_WIDTH_M = 3.0, 9.0, 0.15


def lane_dashes(segments: gpd.GeoDataFrame, carriageways: np.ndarray) -> np.ndarray:
    """Dash polygons on the lane boundaries of every multi-lane segment.

    ``carriageways`` holds one polygon per row of ``segments``.
    """
    if segments.empty:
        return np.empty(0, dtype=object)
    xy = shapely.get_coordinates(segments.geometry.values).reshape(-1, 2, 2)
    a, b = xy[:, 0], xy[:, 1]
    length = np.hypot(*(b - a).T)
    road = segments["road_id"].to_numpy()
    # distance along the road at each segment start (segments of a way are consecutive rows)
    run = segment_runs(xy, road)
    cum = np.cumsum(length)
    first = np.r_[True, run[1:] != run[:-1]]
    start_dist = cum - length - (cum[first] - length[first])[run]

    lanes = segments["lanes"].to_numpy(dtype=int)
    bearing = segments["bearing_deg"].to_numpy(dtype=float)
    d = (b - a) / length[:, None]
    right = np.column_stack([d[:, 1], -d[:, 0]])
    xs, ys, hs, owner = [], [], [], []
    for i in np.flatnonzero(lanes >= 2):
        first = (-start_dist[i]) % PERIOD_M
        s = np.arange(first, length[i] - DASH_M, PERIOD_M) + DASH_M / 2.0
        if len(s) == 0:
            continue
        for k in range(1, lanes[i]):
            off = (k - lanes[i] / 2.0) * LANE_WIDTH_M
            c = a[i] + np.outer(s, d[i]) + right[i] * off
            xs.append(c[:, 0])
            ys.append(c[:, 1])
            hs.append(np.full(len(s), bearing[i]))
            owner.append(np.full(len(s), i))
    if not xs:
        return np.empty(0, dtype=object)
    owner_all = np.concatenate(owner)
    dashes = oriented_boxes(np.concatenate(xs), np.concatenate(ys), np.concatenate(hs), DASH_M, LINE_WIDTH_M)
    if len(carriageways):
        # leave out dashes that reach into a carriageway of another road (junctions)
        tree = shapely.STRtree(np.asarray(carriageways))
        di, ci = tree.query(dashes, predicate="intersects")
        foreign = road[ci] != road[owner_all[di]]
        bad = np.zeros(len(dashes), dtype=bool)
        bad[di[foreign]] = True
        dashes = dashes[~bad]
    return dashes


def bay_lines(bays: np.ndarray) -> np.ndarray:
    """Thin painted lines along both long sides of every car-park bay."""
    if len(bays) == 0:
        return np.empty(0, dtype=object)
    coords = shapely.get_coordinates(shapely.get_exterior_ring(bays)).reshape(len(bays), -1, 2)[:, :4]
    edges = []
    for i, j in ((0, 1), (2, 3)):  # front-right to back-right, back-left to front-left
        edges.append(shapely.linestrings(np.stack([coords[:, i], coords[:, j]], axis=1)))
    return shapely.buffer(np.concatenate(edges), LINE_WIDTH_M / 2.0, cap_style="flat")
