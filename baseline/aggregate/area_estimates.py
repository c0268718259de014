"""Building figures of a Sentinel-2 run: area estimates from 10 m pixels, put into the indicator tables.

At 10 m no single building is resolved, so a run on Sentinel-2 alone has no
building count and no per-building heights (:class:`Capabilities` withholds
them). What it has is, per pixel, the share covered by buildings and the mean
height of that built share (:func:`baseline.detect.s2_builtup.builtup_maps`).
This module sums those pixels into every zone of the indicator tables (city,
district, H3 cell), over the zone's *valid* pixels (pixel centre inside the
zone, clear and in the image):

- ``coverage_ratio``: mean built-up fraction of the valid pixels (the built
  share of the zone's visible ground);
- ``footprint_area_m2``: that share times the zone's area;
- ``height_mean_m``: the fraction-weighted mean of the pixel heights (the
  footprint-area-weighted mean building height);
- ``built_volume_m3``: the zone's area times the mean of fraction x height.

Zones whose valid fraction is under the run's minimum keep no figure, like
every other image figure. Each row's ``notes`` says the figures are area
estimates, and ``sensor`` names Sentinel-2.
"""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
from affine import Affine
from pyproj import CRS
from rasterio.features import rasterize

from baseline.aggregate.types import Indicators

AREA_NOTE = ("area estimates from Sentinel-2 10 m pixels (built-up fraction and mean height per pixel, "
             "model {model}): coverage, footprint area, mean height and built volume; no building count")
AREA_COLUMNS = ("coverage_ratio", "footprint_area_m2", "height_mean_m", "built_volume_m3")


def zone_sums(zones: gpd.GeoDataFrame, fraction: np.ndarray, height_m: np.ndarray, valid: np.ndarray,
              transform: Affine, crs: CRS | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per zone (row of ``zones``): valid pixels, sum of fraction, sum of fraction x height.

    A pixel belongs to the zone holding its centre. The zones of one level (the city, its
    districts, its H3 cells) do not overlap, so one burn gives every pixel its zone.
    """
    geoms = zones.geometry.to_crs(CRS.from_user_input(crs)).values if zones.crs is not None else zones.geometry.values
    ids = rasterize(((g, i + 1) for i, g in enumerate(geoms) if g is not None and not g.is_empty),
                    out_shape=valid.shape, transform=transform, fill=0, dtype="int32").ravel() - 1
    keep = ids >= 0
    zone, v = ids[keep], valid.ravel()[keep]
    f = np.where(v, fraction.ravel()[keep], 0.0).astype(np.float64)
    fh = np.where(v, (fraction * height_m).ravel()[keep], 0.0).astype(np.float64)
    n = len(zones)
    return (np.bincount(zone, weights=v.astype(np.float64), minlength=n),
            np.bincount(zone, weights=f, minlength=n), np.bincount(zone, weights=fh, minlength=n))


def _fill(frame: gpd.GeoDataFrame, fraction: np.ndarray, height_m: np.ndarray, valid: np.ndarray,
          transform: Affine, crs: CRS | str, min_valid_fraction: float, note: str) -> gpd.GeoDataFrame:
    out = frame.copy()
    if not len(out):
        return out
    n_valid, f_sum, fh_sum = zone_sums(out, fraction, height_m, valid, transform, crs)
    area = out["zone_area_m2"].to_numpy(dtype=float)
    keep = (out["valid_fraction"].to_numpy(dtype=float) >= min_valid_fraction) & (n_valid > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(keep, f_sum / n_valid, np.nan)
        height = np.where(keep & (f_sum > 0), fh_sum / f_sum, np.nan)
        volume = np.where(keep, fh_sum / n_valid * area, np.nan)
    out["coverage_ratio"] = coverage
    out["footprint_area_m2"] = coverage * area
    out["height_mean_m"] = height
    out["built_volume_m3"] = volume
    notes = out["notes"].astype("string").fillna("")
    out["notes"] = [f"{n}; {note}" if n else note for n in notes]
    out["notes"] = out["notes"].astype("string")
    return out


def with_area_estimates(indicators: Indicators, fraction: np.ndarray, height_m: np.ndarray, valid: np.ndarray,
                        transform: Affine, crs: CRS | str, *, model: str, min_valid_fraction: float) -> Indicators:
    """``indicators`` with the building area figures of every level taken from the Sentinel-2 pixels."""
    note = AREA_NOTE.format(model=model)
    kwargs = dict(fraction=fraction, height_m=height_m, valid=valid, transform=transform, crs=crs,
                  min_valid_fraction=min_valid_fraction, note=note)
    return replace(
        indicators,
        city=_fill(indicators.city, **kwargs),
        h3=_fill(indicators.h3, **kwargs),
        district=None if indicators.district is None else _fill(indicators.district, **kwargs),
        notes=(*indicators.notes, f"Buildings: {note}."),
    )
