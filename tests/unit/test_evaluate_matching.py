"""One-to-one matching with known answers: IoU thresholds, competing pairs, the radius."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from baseline.errors import InvalidValueError
from baseline.evaluate import match_buildings, match_vehicles
from baseline.evaluate.matching import optimal_assignment

CRS = "EPSG:32635"


def gdf(geoms):
    return gpd.GeoDataFrame(geometry=list(geoms), crs=CRS)


def square(x, y, side=10.0):
    return box(x, y, x + side, y + side)


def test_iou_of_exactly_0_6_matches_at_0_5_but_not_at_0_7():
    truth = gdf([square(0, 0)])
    pred = gdf([square(2.5, 0)])  # overlap 75, union 125: IoU 0.6
    m = match_buildings(pred, truth, iou=0.5)
    assert (m.tp, m.fp, m.fn) == (1, 0, 0)
    assert m.score[0] == pytest.approx(0.6)
    m = match_buildings(pred, truth, iou=0.7)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)


def test_iou_of_0_4_does_not_match_at_0_5():
    truth = gdf([square(0, 0)])
    pred = gdf([square(30 / 7, 0)])  # overlap 100 - 300/7, union 100 + 300/7: IoU 0.4
    m = match_buildings(pred, truth, iou=0.5)
    assert (m.tp, m.fp, m.fn) == (0, 1, 1)
    assert match_buildings(pred, truth, iou=0.4).tp == 1


def test_iou_exactly_at_the_threshold_matches():
    truth = gdf([square(0, 0)])
    pred = gdf([square(10 / 3, 0)])  # overlap 200/3, union 400/3: IoU 0.5
    assert match_buildings(pred, truth, iou=0.5).tp == 1


def test_two_predictions_competing_for_one_truth_give_one_tp_and_one_fp():
    truth = gdf([square(0, 0)])
    pred = gdf([square(2.5, 0), square(1, 0)])  # IoU 0.6 and 0.818...
    m = match_buildings(pred, truth, iou=0.5)
    assert (m.tp, m.fp, m.fn) == (1, 1, 0)
    assert m.pred.tolist() == [1]  # the better footprint wins
    assert m.truth.tolist() == [0]


def test_each_truth_is_matched_once_across_many():
    truth = gdf([square(x, 0) for x in range(0, 200, 20)])
    pred = gdf([square(x + 1, 0) for x in range(0, 200, 20)] + [square(41, 1)])
    m = match_buildings(pred, truth, iou=0.5)
    assert (m.tp, m.fp, m.fn) == (10, 1, 0)
    assert len(set(m.truth.tolist())) == m.tp and len(set(m.pred.tolist())) == m.tp


def test_vehicles_optimal_matching_beats_greedy_nearest():
    # truths at x = 0 and 2; predictions at 1.1 and 3.2 (radius 1.5).
    # Greedy nearest pairs 1.1 with 2 (0.9 m) and leaves 3.2 unmatched; optimal matches both.
    truth = gdf([Point(0, 0), Point(2, 0)])
    pred = gdf([Point(1.1, 0), Point(3.2, 0)])
    m = match_vehicles(pred, truth, radius=1.5)
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    pairs = dict(zip(m.pred.tolist(), m.truth.tolist(), strict=True))
    assert pairs == {0: 0, 1: 1}
    np.testing.assert_allclose(sorted(m.score), [1.1, 1.2])


def test_vehicles_prefer_the_closer_assignment_among_equally_many():
    truth = gdf([Point(0, 0), Point(1, 0)])
    pred = gdf([Point(0.1, 0), Point(0.9, 0)])
    m = match_vehicles(pred, truth, radius=1.5)
    assert dict(zip(m.pred.tolist(), m.truth.tolist(), strict=True)) == {0: 0, 1: 1}


def test_vehicle_boxes_match_by_centre_and_the_radius_is_inclusive():
    truth = gdf([box(-2.2, -0.9, 2.2, 0.9)])
    assert match_vehicles(gdf([box(-0.7, -0.9, 3.7, 0.9)]), truth, radius=1.5).tp == 1  # 1.5 m apart
    assert match_vehicles(gdf([box(-0.6, -0.9, 3.8, 0.9)]), truth, radius=1.5).tp == 0  # 1.6 m apart


def test_empty_tables_and_bad_thresholds():
    m = match_vehicles(gdf([]), gdf([Point(0, 0)]))
    assert (m.tp, m.fp, m.fn) == (0, 0, 1)
    m = match_buildings(gdf([square(0, 0)]), gdf([]))
    assert (m.tp, m.fp, m.fn) == (0, 1, 0)
    with pytest.raises(InvalidValueError):
        match_buildings(gdf([]), gdf([]), iou=0)
    with pytest.raises(InvalidValueError):
        match_vehicles(gdf([]), gdf([]), radius=-1)


def test_optimal_assignment_maximises_the_number_of_pairs_first():
    # row 0 could take col 0 with a high score, but then row 1 has nothing
    rows, cols = np.array([0, 0, 1]), np.array([0, 1, 0])
    score = np.array([0.99, 0.01, 0.01])
    chosen = optimal_assignment(rows, cols, score, 2, 2)
    assert sorted(zip(rows[chosen].tolist(), cols[chosen].tolist(), strict=True)) == [(0, 1), (1, 0)]
