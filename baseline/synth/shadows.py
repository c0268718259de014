"""Shadow geometry cast by the sun: buildings onto the ground and onto lower roofs.

A flat-roofed prism of height ``H`` casts onto flat ground the footprint swept
along the shadow direction (sun azimuth + 180) over ``H / tan(elevation)``. A
sweep is built from vector pieces whose union is exact (the Minkowski sum of a
polygon with a segment is the polygon, its translate, and one parallelogram per
boundary edge), so it needs no unions and rasterises directly.

Onto a roof of height ``h < H`` the shadow is the same sweep over
``(H - h) / tan(elevation)``: a sun ray from a roof point climbs
``tan(elevation)`` per metre, so it meets the taller building only if the
building's footprint lies within that distance towards the sun. (Equivalently,
in ground-shadow terms, the part of the sweep between ``h / tan e`` and
``H / tan e`` shifted back by ``h / tan e``.)
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from baseline.core.geo import compass_to_vector
from baseline.synth.geometry import translate


def shadow_direction(sun_elevation_deg: float, sun_azimuth_deg: float) -> tuple[float, float, float]:
    """(east, north, metres of shadow per metre of height) for the sun position."""
    east, north = compass_to_vector(sun_azimuth_deg + 180.0)
    return float(east), float(north), 1.0 / math.tan(math.radians(sun_elevation_deg))


def sweep_pieces(
    polygons: np.ndarray, length: np.ndarray, ux: float, uy: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pieces whose union is each polygon swept by ``length`` towards ``(ux, uy)``.

    Returns the pieces and, for each, the index of the polygon it came from.
    """
    polygons = np.asarray(polygons)
    n = len(polygons)
    if n == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    length = np.broadcast_to(np.asarray(length, dtype=float), n)
    dx, dy = length * ux, length * uy
    moved = translate(polygons, dx, dy)

    rings, ring_owner = shapely.get_rings(polygons, return_index=True)
    coords, ring_index = shapely.get_coordinates(rings, return_index=True)
    same = ring_index[1:] == ring_index[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    owner = ring_owner[ring_index[:-1][same]]
    shift = np.column_stack([dx[owner], dy[owner]])
    quads = np.stack([a, b, b + shift, a + shift, a], axis=1)
    edges = shapely.polygons(quads)
    pieces = np.concatenate([polygons, moved, edges])
    owners = np.concatenate([np.arange(n), np.arange(n), owner])
    return pieces, owners


def roof_shadow_pieces(
    footprints: np.ndarray, heights: np.ndarray, ux: float, uy: float, per_m: float
) -> np.ndarray:
    """Shadow pieces that taller buildings cast onto lower roofs, clipped to those roofs.

    ``footprints`` must not overlap one another (each pixel has one roof).
    """
    footprints = np.asarray(footprints)
    heights = np.asarray(heights, dtype=float)
    if len(footprints) < 2:
        return np.empty(0, dtype=object)
    reach = shapely.envelope(
        shapely.union(shapely.envelope(footprints), translate(shapely.envelope(footprints), heights * per_m * ux, heights * per_m * uy))
    )
    tree = shapely.STRtree(footprints)
    caster, receiver = tree.query(reach, predicate="intersects")
    keep = (caster != receiver) & (heights[caster] > heights[receiver] + 0.05)
    caster, receiver = caster[keep], receiver[keep]
    if len(caster) == 0:
        return np.empty(0, dtype=object)
    length = (heights[caster] - heights[receiver]) * per_m
    pieces, owner = sweep_pieces(footprints[caster], length, ux, uy)
    clipped = shapely.intersection(pieces, footprints[receiver][owner])
    return clipped[~shapely.is_empty(clipped)]


def box_sweeps(boxes: np.ndarray, heights: np.ndarray, ux: float, uy: float, per_m: float) -> np.ndarray:
    """Shadows of convex objects (vehicles, roof fixtures): hull of the box and its cast copy."""
    boxes = np.asarray(boxes)
    if len(boxes) == 0:
        return boxes
    h = np.asarray(heights, dtype=float) * per_m
    moved = translate(boxes, h * ux, h * uy)
    return shapely.convex_hull(shapely.union(boxes, moved))


def tree_shadows(x: np.ndarray, y: np.ndarray, radius: np.ndarray, height: np.ndarray,
                 ux: float, uy: float, per_m: float, sin_elev: float) -> np.ndarray:
    """Ground shadows of round crowns (spheres at ``height - radius``) with their trunks.

    A sphere's shadow is an ellipse: ``radius`` across the sun, ``radius / sin(elevation)``
    along it, centred where the sphere's centre casts.
    """
    if len(x) == 0:
        return np.empty(0, dtype=object)
    hc = np.maximum(height - radius, 0.5)
    cx, cy = x + hc * per_m * ux, y + hc * per_m * uy
    t = np.linspace(0.0, 2 * np.pi, 17)
    along = radius[:, None] / max(sin_elev, 0.05) * np.cos(t)[None, :]
    across = radius[:, None] * np.sin(t)[None, :]
    ex = cx[:, None] + along * ux + across * uy
    ey = cy[:, None] + along * uy - across * ux
    crowns = shapely.polygons(np.stack([ex, ey], axis=-1))
    trunks = shapely.buffer(shapely.linestrings(np.stack([np.column_stack([x, y]), np.column_stack([cx, cy])],
                                                         axis=1)), 0.18, cap_style="flat")
    return np.concatenate([crowns, trunks])
