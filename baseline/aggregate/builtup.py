"""Per-pixel built-up fraction and height (Sentinel-2, 10 m) summed into H3 cells.

The input is what :func:`baseline.detect.s2_builtup.builtup_maps` gives per
pixel: the share of the pixel covered by building footprints and the mean
height of that built area. A pixel belongs to the H3 cell holding its centre
(latitude/longitude, :func:`baseline.aggregate.zones.h3_cells_of`: the same
rule as every other H3 table here). Per cell, over its *valid* pixels only
(clear, in the image):

- ``builtup_fraction``: the mean fraction (the cell's footprint-covered share
  of its valid ground);
- ``height_mean_m``: the fraction-weighted mean of the pixel heights, i.e. the
  footprint-area-weighted mean building height (NaN where nothing is built);
- ``built_volume_m3``: the sum of fraction x pixel area x height;
- ``footprint_area_m2``: the sum of fraction x pixel area.

It lives in ``aggregate`` (not ``detect``) because it is an aggregation and
the house's layering lets only a later stage read an earlier one.
"""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS

from baseline.aggregate.zones import h3_cells_of

CELL_COLUMNS = ("h3", "pixels", "valid_pixels", "valid_fraction", "builtup_fraction", "height_mean_m",
                "footprint_area_m2", "built_volume_m3")


def pixel_cells(transform: Affine, shape: tuple[int, int], crs: CRS | str, resolution: int = 9) -> np.ndarray:
    """``(y, x)`` object array: the H3 index of each pixel's centre."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    x, y = transform * (cols.ravel() + 0.5, rows.ravel() + 0.5)
    return h3_cells_of(shapely.points(x, y), CRS.from_user_input(crs), resolution).reshape(shape)


def builtup_cells(fraction: np.ndarray, height_m: np.ndarray, valid: np.ndarray, transform: Affine,
                  crs: CRS | str, resolution: int = 9, cells: np.ndarray | None = None) -> pd.DataFrame:
    """One row per H3 cell that holds a pixel centre (columns :data:`CELL_COLUMNS`), sorted by index.

    Args:
        fraction: ``(y, x)`` built-up fraction per pixel, 0-1.
        height_m: ``(y, x)`` mean building height of each pixel's built area, metres.
        valid: ``(y, x)`` True where the pixel is clear and in the image; others are left out.
        transform, crs: the pixel grid (north-up; its pixel area is ``|a * e|``).
        resolution: H3 resolution (9: cells of about 0.1 km2).
        cells: the pixels' cells (:func:`pixel_cells`), when already known.

    ``pixels`` counts the cell's pixels in the image; ``valid_fraction`` is its valid pixels over the
    pixels the whole cell would hold (its area over the pixel area, capped at 1), so a cell cut by the
    image's edge has a low one.
    """
    fraction = np.asarray(fraction, dtype=np.float64)
    height_m = np.asarray(height_m, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if not fraction.shape == height_m.shape == valid.shape:
        raise ValueError(f"fraction {fraction.shape}, height {height_m.shape} and valid {valid.shape} differ")
    if cells is None:
        cells = pixel_cells(transform, fraction.shape, crs, resolution)
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)
    ids, inverse = np.unique(cells.ravel(), return_inverse=True)
    v = valid.ravel()
    f = np.where(v, fraction.ravel(), 0.0)
    fh = np.where(v, fraction.ravel() * height_m.ravel(), 0.0)
    n = len(ids)
    pixels = np.bincount(inverse, minlength=n)
    nvalid = np.bincount(inverse, weights=v.astype(np.float64), minlength=n)
    fsum = np.bincount(inverse, weights=f, minlength=n)
    fhsum = np.bincount(inverse, weights=fh, minlength=n)
    full = np.array([h3.cell_area(str(c), unit="m^2") for c in ids]) / pixel_area
    with np.errstate(invalid="ignore", divide="ignore"):
        frame = pd.DataFrame({
            "h3": ids.astype(str),
            "pixels": pixels.astype(np.int64),
            "valid_pixels": nvalid.astype(np.int64),
            "valid_fraction": np.minimum(nvalid / full, 1.0),
            "builtup_fraction": np.where(nvalid > 0, fsum / np.maximum(nvalid, 1), np.nan),
            "height_mean_m": np.where(fsum > 0, fhsum / np.where(fsum > 0, fsum, 1.0), np.nan),
            "footprint_area_m2": fsum * pixel_area,
            "built_volume_m3": fhsum * pixel_area,
        })
    return frame


def cell_polygons(ids: list[str] | np.ndarray, crs: CRS | str) -> np.ndarray:
    """The hexagons of H3 cells, projected from latitude/longitude to ``crs``."""
    import geopandas as gpd

    rings = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(str(c))]) for c in ids]
    return np.asarray(gpd.GeoSeries(rings, crs=4326).to_crs(CRS.from_user_input(crs)).values, dtype=object)
