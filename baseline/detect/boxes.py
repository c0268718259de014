"""Oriented boxes: parameters <-> polygons, in the scene CRS.

A box is its centre (x, y), length (along its long axis), width, and the
compass bearing of its long axis (``axis_deg``; for a vehicle, its heading).
Axis bearings are undirected unless a heading is known, so comparisons use
:func:`baseline.core.geo.axial_difference_deg`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

from baseline.core.geo import compass_to_vector, vector_to_compass


@dataclass(frozen=True)
class OrientedBox:
    """Centre, size in metres and long-axis bearing (compass degrees)."""

    x: float
    y: float
    length: float
    width: float
    axis_deg: float


def box_polygons(
    x: np.ndarray, y: np.ndarray, length: np.ndarray, width: np.ndarray, axis_deg: np.ndarray
) -> np.ndarray:
    """Vectorised: an array of shapely Polygons for boxes given as arrays."""
    x, y, length, width, axis_deg = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (x, y, length, width, axis_deg))
    fe, fn = compass_to_vector(axis_deg)  # front (long axis)
    re_, rn = fn, -fe  # right-hand side, perpendicular
    hl, hw = length / 2.0, width / 2.0
    corners = []
    for sl, sw in ((1, 1), (1, -1), (-1, -1), (-1, 1)):
        corners.append(np.stack([x + sl * hl * fe + sw * hw * re_, y + sl * hl * fn + sw * hw * rn], axis=-1))
    rings = np.stack(corners, axis=1)  # (n, 4, 2)
    return shapely.polygons(rings)


def box_polygon(box: OrientedBox) -> Polygon:
    """The polygon of one box (corners clockwise from the front right)."""
    return box_polygons(box.x, box.y, box.length, box.width, box.axis_deg)[0]


def box_from_polygon(polygon: Polygon) -> OrientedBox:
    """The oriented box that best describes ``polygon``: its minimum rotated rectangle.

    The axis bearing is reported in [0, 180) because a bare polygon has no front.
    """
    # work near the origin: GEOS loses precision on UTM-sized coordinates
    x0, y0, _, _ = polygon.bounds
    rect = shapely.minimum_rotated_rectangle(shapely.affinity.translate(polygon, -x0, -y0))
    coords = np.asarray(rect.exterior.coords)[:4] + np.array([x0, y0])
    if len(coords) < 4:  # degenerate (a point or a line)
        c = polygon.centroid
        return OrientedBox(c.x, c.y, 0.0, 0.0, 0.0)
    e1 = coords[1] - coords[0]
    e2 = coords[2] - coords[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    long_edge = e1 if l1 >= l2 else e2
    axis = float(np.mod(vector_to_compass(long_edge[0], long_edge[1]), 180.0))
    centre = coords.mean(axis=0)
    return OrientedBox(float(centre[0]), float(centre[1]), max(l1, l2), min(l1, l2), axis)
