"""Footprint regularisation: right angles where the building has them, nothing forced where it has none."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from rasterio import features
from rasterio.transform import from_origin
from shapely import affinity
from shapely.geometry import Point, Polygon

from baseline.detect.instances import polygons_from_labels
from baseline.detect.regularise import dominant_direction, regularise_polygon

L_SHAPE = Polygon([(0, 0), (20, 0), (20, 8), (8, 8), (8, 15), (0, 15)])


def _corner_angles(polygon: Polygon) -> np.ndarray:
    ring = np.asarray(polygon.exterior.coords)[:-1]
    a, b = np.roll(ring, 1, 0) - ring, np.roll(ring, -1, 0) - ring
    cos = (a * b).sum(1) / (np.hypot(*a.T) * np.hypot(*b.T))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _iou(a: Polygon, b: Polygon) -> float:
    return a.intersection(b).area / a.union(b).area


def _traced(truth: Polygon, pixel: float = 0.6) -> Polygon:
    """``truth`` burnt into a label image at ``pixel`` metres and traced back, as detection does."""
    x0, y0, x1, y1 = truth.bounds
    transform = from_origin(x0 - 3 * pixel, y1 + 3 * pixel, pixel, pixel)
    shape = (int((y1 - y0) / pixel) + 7, int((x1 - x0) / pixel) + 7)
    labels = features.rasterize([(truth, 1)], out_shape=shape, transform=transform, dtype="int32")
    return labels, transform


@pytest.mark.parametrize("angle", [0.0, 20.0, 37.0])
def test_a_traced_rotated_l_shape_gets_its_right_angles_back(angle: float) -> None:
    truth = affinity.translate(affinity.rotate(L_SHAPE, angle, origin=(0, 0)), 385000.0, 6672000.0)
    labels, transform = _traced(truth)
    traced = polygons_from_labels(labels, transform, regularise_deg=0)[1]
    regular = polygons_from_labels(labels, transform)[1]
    assert len(regular.exterior.coords) - 1 == 6  # an L has six corners
    np.testing.assert_allclose(_corner_angles(regular), 90.0, atol=0.01)
    assert len(traced.exterior.coords) >= len(regular.exterior.coords)
    assert _iou(regular, truth) > 0.93
    assert _iou(regular, truth) >= _iou(traced, truth) - 0.01
    axis = math.degrees(dominant_direction([np.asarray(regular.exterior.coords)])[0])
    assert min(abs(axis - angle % 90), 90 - abs(axis - angle % 90)) < 2.0


def test_round_and_many_sided_buildings_are_left_as_traced() -> None:
    tower = Point(385000.0, 6672000.0).buffer(10.0, quad_segs=16)
    assert regularise_polygon(tower, outline_m=0.6) is tower
    octagon = Point(0, 0).buffer(10.0, quad_segs=2)  # eight sides at 45 degrees: half the length is off any axis pair
    assert regularise_polygon(octagon, outline_m=0.6).equals(octagon)


def test_a_real_step_in_a_facade_stays_and_a_pixel_step_goes() -> None:
    stepped = Polygon([(0, 0), (30, 0), (30, 10), (15, 10), (15, 12), (0, 12)])  # a 2 m set-back
    out = regularise_polygon(stepped, merge_m=0.6)
    assert len(out.exterior.coords) - 1 == 6
    jitter = Polygon([(0, 0), (30, 0), (30, 10), (15, 10), (15, 10.3), (0, 10.3)])  # 0.3 m: tracing noise
    out = regularise_polygon(jitter, merge_m=0.6)
    assert len(out.exterior.coords) - 1 == 4
    np.testing.assert_allclose(_corner_angles(out), 90.0, atol=0.01)
    assert abs(out.area - jitter.area) < 0.02 * jitter.area


def test_a_change_too_large_keeps_the_traced_outline() -> None:
    # a sliver triangle: snapping would change it beyond the IoU guard, so it is returned untouched
    sliver = Polygon([(0, 0), (10, 0.0), (10, 1.5)])
    assert regularise_polygon(sliver).equals(sliver)
    assert shapely.is_valid(regularise_polygon(L_SHAPE))


def test_regularisation_can_be_switched_off() -> None:
    truth = affinity.rotate(L_SHAPE, 20.0, origin=(0, 0))
    labels, transform = _traced(truth)
    off = polygons_from_labels(labels, transform, regularise_deg=0)[1]
    assert not np.allclose(_corner_angles(off), 90.0, atol=1.0)
    assert regularise_polygon(off, tolerance_deg=0) is off
