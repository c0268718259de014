"""Small vectorised geometry helpers shared by the planners and the painter."""

from __future__ import annotations

import numpy as np
import shapely


def oriented_boxes(x: np.ndarray, y: np.ndarray, heading_deg: np.ndarray, length: np.ndarray,
                   width: np.ndarray) -> np.ndarray:
    """Rectangles centred at ``(x, y)`` with their long axis along compass ``heading_deg``.

    The first vertex is the front-right corner, then back-right, back-left,
    front-left (clockwise seen from above).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    h = np.radians(heading_deg)
    fx, fy = np.sin(h), np.cos(h)          # forward
    rx, ry = fy, -fx                       # right
    hl = np.broadcast_to(np.asarray(length, dtype=float), x.shape) / 2.0
    hw = np.broadcast_to(np.asarray(width, dtype=float), x.shape) / 2.0
    corners = [
        np.column_stack([x + sl * hl * fx + sw * hw * rx, y + sl * hl * fy + sw * hw * ry])
        for sl, sw in ((1, 1), (-1, 1), (-1, -1), (1, -1), (1, 1))
    ]
    if len(x) == 0:
        return np.empty(0, dtype=object)
    return shapely.polygons(np.stack(corners, axis=1))


def translate(geoms: np.ndarray, dx: np.ndarray | float, dy: np.ndarray | float) -> np.ndarray:
    """Each geometry moved by its own ``(dx, dy)``."""
    geoms = np.asarray(geoms)
    if len(geoms) == 0:
        return geoms
    _, index = shapely.get_coordinates(geoms, return_index=True)
    dx = np.broadcast_to(np.asarray(dx, dtype=float), len(geoms))
    dy = np.broadcast_to(np.asarray(dy, dtype=float), len(geoms))
    offset = np.column_stack([dx[index], dy[index]])
    return shapely.transform(geoms, lambda c: c + offset)


def largest_polygon(geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` itself if a Polygon, else its largest polygon part (empty if none)."""
    if geom.geom_type == "Polygon":
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]
    return max(parts, key=lambda p: p.area) if parts else shapely.Polygon()


def segment_runs(ends: np.ndarray, way: np.ndarray) -> np.ndarray:
    """Run number of each two-point road segment: consecutive rows of one way that join end to start.

    ``ends`` is ``(n, 2, 2)`` (start and end points), ``way`` the OSM way id of each row.
    """
    new = np.ones(len(ends), dtype=bool)
    new[1:] = (way[1:] != way[:-1]) | (np.hypot(*(ends[1:, 0] - ends[:-1, 1]).T) > 0.01)
    return np.cumsum(new) - 1
