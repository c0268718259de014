"""Building heights from a surface model: the median height above ground inside each footprint.

When a run's config supplies a surface model (``detect.surface_model``), every
footprint gets the median of the height-above-ground pixels whose centre lies
inside it. The surface is either a normalised DSM (height above ground, the
default) or a DSM, with the ground model (``detect.ground_model``, a DTM)
subtracted. Both are read in blocks of footprints, so a city-wide raster is
never read whole, and in the raster's own CRS (the footprints are projected to
it).

The median is robust to a chimney or a tree overhanging the roof edge. Its
uncertainty combines the surface model's vertical accuracy
(:data:`VERTICAL_SIGMA_M`, typical of airborne lidar products) with the
spread of the roof (its MAD) over the square root of the pixels counted.
Footprints with fewer than ``min_pixels`` valid pixels keep no surface height.

:func:`fuse_surface_heights` then gives each building with a surface height
that height (``height_source`` ``dsm``, with its ``height_sigma_m``); the
image's height (shadow or learned) stays where the surface model has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window, from_bounds

from baseline.errors import CRSMismatchError, InputFileError

VERTICAL_SIGMA_M = 0.5
"""Vertical accuracy assumed for a surface model (airborne lidar DSMs are typically 0.1-0.5 m RMSE)."""
BLOCK_M = 500.0
"""Footprints are grouped by the block of this side their centroid falls in; one window read per block."""


@dataclass(frozen=True)
class SurfaceHeights:
    """Per footprint (in input order): median height above ground, its sigma, and pixels counted."""

    height_m: np.ndarray
    sigma_m: np.ndarray
    pixels: np.ndarray


def _open(path: Path, what: str) -> rasterio.io.DatasetReader:
    if not Path(path).is_file():
        raise InputFileError(path, f"{what} not found", hint="check detect.surface_model / detect.ground_model")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(path, f"cannot read the {what} ({exc})") from None
    if src.crs is None:
        src.close()
        raise InputFileError(path, f"the {what} has no CRS", hint="give it a CRS (e.g. gdal_edit.py -a_srs)")
    return src


def _read(src: rasterio.io.DatasetReader, window: Window) -> np.ma.MaskedArray:
    band = src.read(1, window=window, masked=True, boundless=True, fill_value=src.nodata or 0)
    return np.ma.masked_invalid(band.astype(np.float32))


def footprint_surface_heights(
    footprints: gpd.GeoDataFrame, surface: str | Path, ground: str | Path | None = None, *,
    min_pixels: int = 4, block_m: float = BLOCK_M,
) -> SurfaceHeights:
    """Median height above ground of each footprint, read from ``surface`` (minus ``ground`` when given)."""
    n = len(footprints)
    height = np.full(n, np.nan)
    sigma = np.full(n, np.nan)
    pixels = np.zeros(n, dtype=np.int64)
    if n == 0:
        return SurfaceHeights(height, sigma, pixels)
    if footprints.crs is None:
        raise CRSMismatchError("footprints vs surface model", None, surface)
    with _open(Path(surface), "surface model") as src:
        dtm = _open(Path(ground), "ground model") if ground is not None else None
        try:
            if dtm is not None and (dtm.crs != src.crs or dtm.transform != src.transform or dtm.shape != src.shape):
                raise InputFileError(ground, "the ground model is not on the surface model's grid",
                                     hint="resample the DTM onto the DSM's grid (same CRS, transform and size)")
            geoms = footprints.geometry.to_crs(src.crs).values
            centres = shapely.get_coordinates(shapely.centroid(geoms))
            block = np.floor(centres / block_m).astype(np.int64)
            keys = block[:, 0] * 1_000_003 + block[:, 1]
            order = np.argsort(keys, kind="stable")
            for idx in np.split(order, np.flatnonzero(np.diff(keys[order])) + 1):  # one group per block
                xmin, ymin, xmax, ymax = gpd.GeoSeries(geoms[idx]).total_bounds
                window = from_bounds(xmin, ymin, xmax, ymax, transform=src.transform).round_offsets(
                    op="floor").round_lengths(op="ceil")
                window = Window(window.col_off - 1, window.row_off - 1, window.width + 2, window.height + 2)
                values = _read(src, window)
                if dtm is not None:
                    values = values - _read(dtm, window)
                labels = rasterize(((g, i + 1) for i, g in enumerate(geoms[idx])), out_shape=values.shape,
                                   transform=src.window_transform(window), fill=0, dtype="int32")
                ok = (labels > 0) & ~np.ma.getmaskarray(values)
                lab, val = labels[ok] - 1, np.ma.getdata(values)[ok]
                order = np.argsort(lab, kind="stable")
                lab, val = lab[order], val[order]
                starts = np.searchsorted(lab, np.arange(len(idx)), side="left")
                ends = np.searchsorted(lab, np.arange(len(idx)), side="right")
                for j, (a, b) in enumerate(zip(starts, ends, strict=True)):
                    count = int(b - a)
                    pixels[idx[j]] = count
                    if count < min_pixels:
                        continue
                    v = val[a:b]
                    med = float(np.median(v))
                    mad = 1.4826 * float(np.median(np.abs(v - med)))
                    height[idx[j]] = max(med, 0.0)
                    sigma[idx[j]] = float(np.hypot(VERTICAL_SIGMA_M, mad / np.sqrt(count)))
        finally:
            if dtm is not None:
                dtm.close()
    return SurfaceHeights(height, sigma, pixels)


def fuse_surface_heights(buildings: gpd.GeoDataFrame, surface: SurfaceHeights) -> gpd.GeoDataFrame:
    """Copy of ``buildings`` where each building with a surface height takes it (``height_source = "dsm"``).

    The surface height is a direct measurement of known accuracy; the image's
    heights (shadow rays, the learned head) carry a spread that is not a
    calibrated error (shadow heights were off by about 1 m on held-out renders
    where their sigma said 0.2-0.5 m), so they are kept only where the surface
    model has no height: outside it, in its holes, or on footprints too small.
    """
    out = buildings.copy()
    if not len(out):
        return out
    use = np.isfinite(surface.height_m)
    out["height_m"] = np.where(use, surface.height_m, out["height_m"].to_numpy(dtype=float))
    out["height_sigma_m"] = np.where(use, surface.sigma_m, out["height_sigma_m"].to_numpy(dtype=float))
    out["height_source"] = np.where(use, "dsm", out["height_source"].astype(object).to_numpy())
    return out
