"""Directions between compass bearings and a raster's pixel axes.

Pixel vectors are ``(drow, dcol)``; the affine transform's linear part maps
``(dcol, drow)`` to ``(east, north)``. Going through the transform (rather than
assuming north-up) keeps flipped or rotated grids right.
"""

from __future__ import annotations

import numpy as np
from affine import Affine

from baseline.core.geo import compass_to_vector, vector_to_compass


def bearing_to_pixel(transform: Affine, bearing_deg: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit pixel direction ``(drow, dcol)`` of a compass bearing on the grid of ``transform``."""
    east, north = compass_to_vector(bearing_deg)
    a, b, d, e = transform.a, transform.b, transform.d, transform.e
    det = a * e - b * d
    dcol = (e * east - b * north) / det
    drow = (-d * east + a * north) / det
    norm = np.hypot(dcol, drow)
    return drow / norm, dcol / norm


def pixel_to_vector(transform: Affine, drow: np.ndarray, dcol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ground vector (east, north) in CRS units of a pixel displacement ``(drow, dcol)``."""
    east = transform.a * dcol + transform.b * drow
    north = transform.d * dcol + transform.e * drow
    return east, north


def pixel_to_bearing(transform: Affine, drow: np.ndarray, dcol: np.ndarray) -> np.ndarray:
    """Compass bearing in [0, 360) of the pixel displacement ``(drow, dcol)``."""
    east, north = pixel_to_vector(transform, drow, dcol)
    return vector_to_compass(east, north)


def pixel_centres_to_xy(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CRS coordinates of fractional pixel positions (0.5 is a pixel centre)."""
    x = transform.a * cols + transform.b * rows + transform.c
    y = transform.d * cols + transform.e * rows + transform.f
    return x, y
