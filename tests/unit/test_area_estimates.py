"""Sentinel-2 area estimates summed into indicator zones, on hand-made rasters with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine

from baseline.aggregate.area_estimates import with_area_estimates, zone_sums
from baseline.aggregate.columns import make_frame
from baseline.aggregate.types import Indicators

CRS = "EPSG:32635"
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 6_700_200.0)  # 20 x 20 pixels of 10 m
WEST = shapely.box(500_000, 6_700_000, 500_100, 6_700_200)
EAST = shapely.box(500_100, 6_700_000, 500_200, 6_700_200)


def rasters() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """West half half-built at 20 m, east half empty; the south-west quarter clouded."""
    fraction = np.zeros((20, 20), dtype=np.float32)
    fraction[:, :10] = 0.5
    height = np.where(fraction > 0, 20.0, 0.0).astype(np.float32)
    valid = np.ones((20, 20), dtype=bool)
    valid[10:, :5] = False
    return fraction, height, valid


def frame(zones: list[shapely.Geometry], valid_fraction: list[float], level: str):
    n = len(zones)
    return make_frame({"city": ["t"] * n, "level": [level] * n, "zone_id": [str(i) for i in range(n)],
                       "zone_area_m2": [z.area for z in zones], "valid_fraction": valid_fraction,
                       "notes": ["kept"] + [""] * (n - 1), "vehicles_withheld": [False] * n,
                       "figures_withheld": [False] * n}, zones, CRS, n)


def test_zone_sums_count_pixel_centres_in_each_zone():
    fraction, height, valid = rasters()
    zones = frame([WEST, EAST], [0.75, 1.0], "h3")
    n_valid, f_sum, fh_sum = zone_sums(zones, fraction, height, valid, TRANSFORM, CRS)
    assert n_valid.tolist() == [150, 200]
    assert f_sum.tolist() == pytest.approx([75.0, 0.0])
    assert fh_sum.tolist() == pytest.approx([1500.0, 0.0])


def test_every_level_gets_coverage_height_and_volume_and_says_they_are_estimates():
    fraction, height, valid = rasters()
    city = frame([shapely.union(WEST, EAST)], [0.875], "city")
    cells = frame([WEST, EAST], [0.75, 1.0], "h3")
    out = with_area_estimates(Indicators(city=city, h3=cells, district=None, h3_resolution=9), fraction, height,
                              valid, TRANSFORM, CRS, model="s2-builtup@1.0.0", min_valid_fraction=0.5)
    west, east = out.h3.iloc[0], out.h3.iloc[1]
    assert west["coverage_ratio"] == pytest.approx(0.5)
    assert west["footprint_area_m2"] == pytest.approx(0.5 * WEST.area)
    assert west["height_mean_m"] == pytest.approx(20.0)
    assert west["built_volume_m3"] == pytest.approx(0.5 * 20.0 * WEST.area)
    assert east["coverage_ratio"] == 0.0 and np.isnan(east["height_mean_m"]) and east["built_volume_m3"] == 0.0
    whole = out.city.iloc[0]
    assert whole["coverage_ratio"] == pytest.approx(75.0 / 350.0)  # over the valid pixels only
    assert whole["height_mean_m"] == pytest.approx(20.0)
    assert west["notes"].startswith("kept; area estimates from Sentinel-2")
    assert east["notes"].startswith("area estimates from Sentinel-2")
    assert any("s2-builtup@1.0.0" in n for n in out.notes)


def test_zone_under_the_valid_minimum_gets_no_figure():
    fraction, height, valid = rasters()
    cells = frame([WEST, EAST], [0.4, 1.0], "h3")
    out = with_area_estimates(Indicators(city=cells.iloc[:0], h3=cells, district=None, h3_resolution=9), fraction,
                              height, valid, TRANSFORM, CRS, model="m", min_valid_fraction=0.5)
    assert out.h3[["coverage_ratio", "height_mean_m", "built_volume_m3"]].iloc[0].isna().all()
    assert out.h3["coverage_ratio"].iloc[1] == 0.0
