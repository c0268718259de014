"""The sun as input to the building network: where each metre of height casts its shadow.

A shadow is ``1 / tan(elevation)`` metres long per metre of height and points
away from the sun. A network that sees only pixels cannot turn the shadow it
sees into a height unless it knows that ratio; it regresses to the mean height
instead, which is what the learned height head did where no shadow could be
measured. The building model can therefore take the sun as two constant input
planes after the bands: the shadow's (row, col) displacement in the chip's
pixel frame per metre of height (:data:`SUN_PLANES`). As a pixel-frame vector
it turns with the crop when training flips or rotates it, so the eight
symmetries of a crop are eight consistent suns.

Where a scene has no sun angles the planes are zero, a case the training
shows the network on a share of its crops (``sun_dropout``).
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine

from baseline.detect.frames import bearing_to_pixel
from baseline.errors import InvalidValueError

SUN_PLANES = ("shadow_drow_per_m", "shadow_dcol_per_m")
MAX_SHADOW_PER_M = 4.0  # a 14 degree sun; longer shadows are clipped to this length


def shadow_vector(transform: Affine, sun_elevation_deg: float | None, sun_azimuth_deg: float | None) -> np.ndarray:
    """``(2,)`` float32: metres of shadow per metre of height along (rows, cols) of ``transform``'s grid.

    Zero when either angle is unknown (None). The length is capped at
    :data:`MAX_SHADOW_PER_M`; an elevation outside (0, 90] degrees is an
    :class:`~baseline.errors.InvalidValueError`.
    """
    if sun_elevation_deg is None or sun_azimuth_deg is None:
        return np.zeros(2, dtype=np.float32)
    if not 0.0 < sun_elevation_deg <= 90.0:
        raise InvalidValueError("sun elevation", sun_elevation_deg, "above 0 and at most 90 degrees")
    length = min(1.0 / math.tan(math.radians(sun_elevation_deg)), MAX_SHADOW_PER_M)
    drow, dcol = bearing_to_pixel(transform, sun_azimuth_deg + 180.0)
    return np.array([float(drow) * length, float(dcol) * length], dtype=np.float32)


def sun_planes(vector: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(2, height, width)`` float32 planes holding ``vector`` (see :func:`shadow_vector`)."""
    return np.broadcast_to(np.asarray(vector, np.float32)[:, None, None], (2, height, width)).copy()
