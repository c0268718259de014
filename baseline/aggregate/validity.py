"""``valid_fraction`` per zone: the share of a zone's land that the image saw clearly.

From a valid-pixel mask, a zone's fraction is (valid pixels whose centre falls
in the zone x pixel area) / the zone's land area, so land outside the image
counts as not seen. From a valid-area polygon it is the exact area share.
Without either, every zone gets the scene's overall fraction.
"""

from __future__ import annotations

import numpy as np
import shapely
from rasterio import features

from baseline.aggregate.types import ValidCoverage
from baseline.aggregate.zones import Zones


def _raster_fractions(zones: Zones, coverage: ValidCoverage) -> np.ndarray:
    mask = np.asarray(coverage.mask, dtype=bool)
    transform = coverage.transform
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    valid_px = np.zeros(len(zones))
    shapes = [(geom, i + 1) for i, geom in enumerate(zones.land) if not shapely.is_empty(geom)]
    if not shapes:
        return valid_px
    if zones.overlapping:  # one pass per zone, so overlaps are counted in each
        for geom, value in shapes:
            burnt = features.rasterize([(geom, 1)], out_shape=mask.shape, transform=transform, fill=0, dtype="uint8")
            valid_px[value - 1] = np.count_nonzero(burnt.astype(bool) & mask)
        return valid_px * pixel_area
    burnt = features.rasterize(shapes, out_shape=mask.shape, transform=transform, fill=0, dtype="int32")
    counts = np.bincount(burnt[mask].ravel(), minlength=len(zones) + 1)
    return counts[1:].astype(float) * pixel_area


def valid_fractions(zones: Zones, coverage: ValidCoverage | None, default: float) -> np.ndarray:
    """Valid fraction of each zone's land, in [0, 1]; NaN for a zone with no land."""
    area = np.asarray(zones.area_m2, dtype=float)
    if coverage is None:
        out = np.full(len(zones), float(default))
    else:
        if coverage.polygon is not None:
            valid_area = shapely.area(shapely.intersection(zones.land, coverage.polygon))
        else:
            valid_area = _raster_fractions(zones, coverage)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.clip(valid_area / area, 0.0, 1.0)
    out[~(area > 0)] = np.nan
    return out
