"""Which pixels can be measured: in-image, not cloud, not cloud shadow.

Sentinel-2 L2A carries a scene classification (SCL) band and Landsat
Collection 2 a QA_PIXEL bit mask; when a scene has one, or a Sentinel-2 scene
of the same instant is at hand, its cloud classes are used (for the
very-high-resolution scene too). Otherwise a brightness-and-whiteness rule
finds thick cloud in the very-high-resolution bands, kept only for blobs far
larger than any roof so bright roofs are not masked.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from baseline.errors import InvalidValueError

SCL_NODATA = 0
SCL_CLOUD_SHADOW = 3
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_CIRRUS = 10
SCL_UNUSABLE = (SCL_NODATA, SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)


def scl_unusable(scl: np.ndarray) -> np.ndarray:
    """True where the Sentinel-2 scene classification says nodata, cloud or cloud shadow."""
    return np.isin(scl, SCL_UNUSABLE)


# Landsat Collection 2 QA_PIXEL bits (USGS Landsat 8-9 C2 L2 Science Product Guide)
QA_FILL = 0
QA_DILATED_CLOUD = 1
QA_CIRRUS = 2
QA_CLOUD = 3
QA_CLOUD_SHADOW = 4
QA_UNUSABLE_BITS = (QA_FILL, QA_DILATED_CLOUD, QA_CIRRUS, QA_CLOUD, QA_CLOUD_SHADOW)
# ``cloud_mask``: a staged mask from a cloud model (s2cloudless): 0 no data, 1 clear, 2 cloud
CLOUD_MASK_NODATA, CLOUD_MASK_CLEAR, CLOUD_MASK_CLOUD = 0, 1, 2
CLASS_BANDS = ("scl", "qa_pixel", "cloud_mask")


def qa_pixel_unusable(qa: np.ndarray) -> np.ndarray:
    """True where a Landsat QA_PIXEL value flags fill, dilated cloud, cirrus, cloud or cloud shadow."""
    bits = 0
    for bit in QA_UNUSABLE_BITS:
        bits |= 1 << bit
    return (np.asarray(qa).astype(np.int64) & bits) != 0


def class_band_unusable(band_name: str, values: np.ndarray) -> np.ndarray:
    """Unusable pixels according to a class band: ``scl`` (Sentinel-2), ``qa_pixel`` (Landsat) or ``cloud_mask``."""
    if band_name == "scl":
        return scl_unusable(values)
    if band_name == "qa_pixel":
        return qa_pixel_unusable(values)
    if band_name == "cloud_mask":
        return np.asarray(values) != CLOUD_MASK_CLEAR
    raise InvalidValueError("class band", band_name, f"one of {', '.join(CLASS_BANDS)}")


def bright_cloud_mask(reflectance: np.ndarray, gsd_m: float, *, min_blob_m2: float = 2500.0) -> np.ndarray:
    """Thick cloud in (blue, green, red, nir) reflectance: bright, white, and big.

    A pixel is cloud-like when all visible bands exceed 0.3 and differ by less
    than 20% of their mean; only connected blobs over ``min_blob_m2`` count.
    """
    vis = reflectance[:3]
    mean = vis.mean(axis=0)
    white = (vis.min(axis=0) > 0.3) & ((vis.max(axis=0) - vis.min(axis=0)) < 0.2 * mean)
    if not white.any():
        return white
    labels, n = ndimage.label(white)
    sizes = ndimage.sum_labels(white, labels, index=np.arange(1, n + 1)) * gsd_m * gsd_m
    keep = np.zeros(n + 1, dtype=bool)
    keep[1:] = sizes >= min_blob_m2
    return keep[labels]
