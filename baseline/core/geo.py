"""CRS-carrying geometry helpers shared by every stage.

Conventions used across the project:
- projected coordinates are metres in a UTM zone, x east and y north;
- angles are compass degrees: 0 is north, clockwise positive;
- ``sun_azimuth_deg`` points from the ground *to* the sun, so shadows fall
  towards ``sun_azimuth_deg + 180``;
- ``heading_deg`` of a vehicle is the direction its front points to.
"""

from __future__ import annotations

import math

import numpy as np
from pyproj import CRS

from baseline.errors import CRSMismatchError, InvalidValueError


def utm_crs_for(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM CRS whose zone holds ``(lon, lat)``."""
    if not (-180.0 <= lon <= 180.0 and -80.0 <= lat <= 84.0):
        raise InvalidValueError("lon/lat", (lon, lat), "a point between 80S and 84N")
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    epsg = (32600 if lat >= 0 else 32700) + zone
    return CRS.from_epsg(epsg)


def require_same_crs(what: str, left: CRS | None, right: CRS | None) -> None:
    """Raise :class:`CRSMismatchError` naming both CRSs unless they are equal."""
    if left is None or right is None or CRS.from_user_input(left) != CRS.from_user_input(right):
        raise CRSMismatchError(what, _crs_name(left), _crs_name(right))


def _crs_name(crs: CRS | None) -> str:
    if crs is None:
        return "(none)"
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def compass_to_vector(azimuth_deg: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vector (east, north) for a compass bearing."""
    rad = np.deg2rad(azimuth_deg)
    return np.sin(rad), np.cos(rad)


def vector_to_compass(east: float | np.ndarray, north: float | np.ndarray) -> np.ndarray:
    """Compass bearing in [0, 360) of the vector (east, north)."""
    return np.mod(np.rad2deg(np.arctan2(east, north)), 360.0)


def shadow_offset_m(height_m: float, sun_elevation_deg: float, sun_azimuth_deg: float) -> tuple[float, float]:
    """Ground offset (east, north) in metres of the shadow of a point ``height_m`` up.

    The shadow of a flat roof is the roof translated by this vector; its length is
    ``height_m / tan(sun_elevation)``.
    """
    if not 0.0 < sun_elevation_deg <= 90.0:
        raise InvalidValueError("sun elevation", sun_elevation_deg, "degrees in (0, 90]")
    length = height_m / math.tan(math.radians(sun_elevation_deg))
    east, north = compass_to_vector(sun_azimuth_deg + 180.0)
    return float(east * length), float(north * length)


def axial_difference_deg(a: float | np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """Smallest angle between two undirected lines, in [0, 90] degrees."""
    d = np.mod(np.asarray(a) - np.asarray(b), 180.0)
    return np.minimum(d, 180.0 - d)
