"""Shadow geometry: sweeps of footprints, shadows on lower roofs, vehicle shadows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from baseline.synth.geometry import oriented_boxes, translate
from baseline.synth.shadows import box_sweeps, roof_shadow_pieces, shadow_direction, sweep_pieces


def _swept(polygon, length, ux, uy, steps=400):
    """Reference sweep: the union of many translated copies (slow, obviously right)."""
    copies = [shapely.affinity.translate(polygon, ux * length * t, uy * length * t) for t in np.linspace(0, 1, steps)]
    return shapely.union_all(copies)


def test_shadow_points_away_from_the_sun_with_the_contract_length():
    ux, uy, per_m = shadow_direction(40.0, 180.0)  # sun due south: shadows fall north
    assert (ux, uy) == pytest.approx((0.0, 1.0), abs=1e-12)
    assert 20.0 * per_m == pytest.approx(20.0 / math.tan(math.radians(40.0)))
    ux, uy, _ = shadow_direction(30.0, 90.0)  # sun in the east: shadows fall west
    assert (ux, uy) == pytest.approx((-1.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("azimuth", [180.0, 135.0, 250.0])
def test_sweep_pieces_union_is_the_exact_sweep_of_a_concave_footprint(azimuth):
    ell = shapely.Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 30), (0, 30)])  # an L, with a hole
    ell = ell.difference(shapely.box(3, 3, 6, 6))
    ux, uy, _ = shadow_direction(45.0, azimuth)
    pieces, owner = sweep_pieces(np.array([ell]), np.array([17.0]), ux, uy)
    assert set(owner) == {0}
    ours = shapely.union_all(pieces)
    reference = _swept(ell, 17.0, ux, uy)
    assert ours.symmetric_difference(reference).area < 0.01 * reference.area
    assert ours.area > ell.area + 17.0 * 10  # it really reaches out


def test_a_taller_neighbour_shades_a_lower_roof_over_the_height_difference():
    ux, uy, per_m = shadow_direction(45.0, 180.0)  # shadows fall north, 1 m per metre of height
    tall = shapely.box(0, 0, 20, 20)          # 30 m
    low = shapely.box(0, 20, 20, 60)          # 12 m, just north of it
    far = shapely.box(40, 20, 60, 60)         # out of the way
    pieces = roof_shadow_pieces(np.array([tall, low, far]), np.array([30.0, 12.0, 12.0]), ux, uy, per_m)
    shade = shapely.union_all(pieces)
    # (30 - 12) / tan(45) = 18 m of the low roof are in shadow
    assert shade.bounds == pytest.approx((0.0, 20.0, 20.0, 38.0), abs=1e-6)
    assert not shade.intersects(far)
    # a lower building never shades a taller one
    assert shapely.union_all(pieces).intersection(tall).area == 0


def test_vehicle_shadow_is_its_box_and_the_cast_copy():
    box = oriented_boxes(np.array([0.0]), np.array([0.0]), np.array([90.0]), np.array([4.0]), np.array([2.0]))
    ux, uy, per_m = shadow_direction(45.0, 180.0)
    shadow = box_sweeps(box, np.array([1.5]), ux, uy, per_m)[0]
    assert shadow.bounds == pytest.approx((-2.0, -1.0, 2.0, 2.5))
    assert shadow.area == pytest.approx(4.0 * 3.5)


def test_oriented_boxes_point_their_long_axis_along_the_heading():
    box = oriented_boxes(np.array([10.0]), np.array([20.0]), np.array([0.0]), np.array([4.5]), np.array([1.8]))[0]
    assert box.bounds == pytest.approx((9.1, 17.75, 10.9, 22.25))
    moved = translate(np.array([box]), 1.0, -2.0)[0]
    assert moved.bounds == pytest.approx((10.1, 15.75, 11.9, 20.25))
