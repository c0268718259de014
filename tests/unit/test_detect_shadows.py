"""Shadow geometry: the ground-shadow target and heights measured from shadow rays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio import features
from rasterio.transform import from_origin
from shapely.geometry import box

from baseline.detect.shadows import ground_shadow, rasterize_ground_shadow, shadow_heights

GSD = 0.3
T = from_origin(0.0, 120.0, GSD, GSD)
SHAPE = (400, 400)


def _labels(polys):
    return features.rasterize([(p, i + 1) for i, p in enumerate(polys)], out_shape=SHAPE, transform=T).astype(np.int32)


@pytest.mark.parametrize("azimuth", [180.0, 135.0, 250.0])
def test_recovers_known_height_from_shadow(azimuth: float) -> None:
    # a 20 m box under a 40 degree sun casts a 23.84 m shadow
    assert 20.0 / math.tan(math.radians(40.0)) == pytest.approx(23.84, abs=0.01)
    building = box(45.0, 45.0, 70.0, 65.0)
    shadow = rasterize_ground_shadow([building], np.array([20.0]), 40.0, azimuth, T, SHAPE).astype(np.float32)
    result = shadow_heights(_labels([building]), shadow, T, 40.0, azimuth)[1]
    assert result.rays_used >= 10
    assert result.height_m == pytest.approx(20.0, abs=1.0)
    assert result.sigma_m < 2.0


def test_ground_shadow_excludes_footprints_and_has_the_right_length() -> None:
    building = box(0, 0, 10, 10)
    geom = ground_shadow([building], np.array([20.0]), 40.0, 180.0)  # sun in the south: shadow to the north
    assert not geom.intersects(building.buffer(-0.01))
    assert geom.bounds[3] == pytest.approx(10 + 23.84, abs=0.01)


def test_rays_that_hit_another_building_are_censored() -> None:
    tall = box(45.0, 45.0, 70.0, 65.0)
    # a neighbour 10 m north, inside the 23.8 m shadow: rays from the tall one meet it
    neighbour = box(40.0, 75.0, 75.0, 90.0)
    shadow = rasterize_ground_shadow([tall, neighbour], np.array([20.0, 3.0]), 40.0, 180.0, T, SHAPE)
    result = shadow_heights(_labels([tall, neighbour]), shadow.astype(np.float32), T, 40.0, 180.0)
    assert result[1].rays_used == 0
    assert math.isnan(result[1].height_m)
    # the low neighbour's own shadow is measured (3 m -> 3.58 m long)
    assert result[2].height_m == pytest.approx(3.0, abs=0.6)


def test_rays_leaving_the_valid_area_are_censored() -> None:
    building = box(45.0, 45.0, 70.0, 65.0)
    shadow = rasterize_ground_shadow([building], np.array([20.0]), 40.0, 180.0, T, SHAPE).astype(np.float32)
    valid = np.ones(SHAPE, dtype=bool)
    valid[:150, :] = False  # north of y = 75 m is unseen
    result = shadow_heights(_labels([building]), shadow, T, 40.0, 180.0, valid=valid)[1]
    assert result.rays_used == 0
