"""Unmatched footprints sorted by kind: missed, merged, split, outline; merged, phantom, partial."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from baseline.evaluate.building_errors import building_error_kinds
from baseline.evaluate.matching import match_buildings
from baseline.evaluate.scoring import building_metrics

TRUTH = [
    (0, 0, 10, 10),  # found exactly
    (20, 0, 30, 10),  # missed
    (40, 0, 50, 10), (50, 0, 60, 10),  # two touching buildings, found as one
    (70, 0, 90, 10),  # found in two pieces
    (100, 0, 110, 10),  # found with an outline shifted too far
]
PRED = [
    (0, 0, 10, 10),
    (40, 0, 61, 10),  # IoU 100/210 with each of the pair
    (70, 0, 79, 10), (81, 0, 90, 10),  # IoU 0.45 each
    (103, 0, 115, 10),  # IoU 70/150
    (200, 0, 210, 10),  # nothing there
    (1, 1, 9, 9),  # a second, smaller outline of the building found first
]


def _boxes(boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    return shapely.box(*np.asarray(boxes, dtype=float).T)


def test_each_unmatched_footprint_gets_its_kind():
    pred, truth = _boxes(PRED), _boxes(TRUTH)
    m = match_buildings(pred, truth, 0.5)
    assert (m.tp, m.fn, m.fp) == (1, 5, 6)
    kinds = building_error_kinds(pred, truth, m)
    assert kinds == {
        "building_fn_missed": 1, "building_fn_merged": 2, "building_fn_split": 1, "building_fn_outline": 1,
        "building_fp_merged": 1, "building_fp_phantom": 1, "building_fp_extra": 1, "building_fp_partial": 3,
    }


def test_the_kinds_add_up_to_the_unmatched_counts_on_a_random_layout():
    rng = np.random.default_rng(5)
    truth_boxes = [(x, y, x + 8, y + 8) for x in range(0, 200, 10) for y in range(0, 100, 10)]
    truth = _boxes(truth_boxes)
    jitter = rng.normal(0, 3, size=(len(truth_boxes), 4))
    pred = _boxes([tuple(np.sort(np.asarray(b) + j).tolist()) for b, j in zip(truth_boxes, jitter, strict=True)])
    pred = shapely.make_valid(pred[shapely.area(pred) > 1])
    m = match_buildings(pred, truth, 0.5)
    kinds = building_error_kinds(pred, truth, m)
    assert sum(v for k, v in kinds.items() if k.startswith("building_fn_")) == m.fn > 0
    assert sum(v for k, v in kinds.items() if k.startswith("building_fp_")) == m.fp > 0


def test_with_nothing_predicted_every_building_is_missed():
    truth = _boxes(TRUTH)
    m = match_buildings(np.array([], dtype=object), truth, 0.5)
    kinds = building_error_kinds(np.array([], dtype=object), truth, m)
    assert kinds["building_fn_missed"] == len(TRUTH)
    assert sum(kinds.values()) == len(TRUTH)
    m = match_buildings(_boxes(PRED), np.array([], dtype=object), 0.5)
    kinds = building_error_kinds(_boxes(PRED), np.array([], dtype=object), m)
    assert kinds["building_fp_phantom"] == len(PRED) == sum(kinds.values())


def test_building_metrics_report_the_kinds():
    crs = "EPSG:3067"
    pred = gpd.GeoDataFrame(geometry=_boxes(PRED), crs=crs)
    truth = gpd.GeoDataFrame(geometry=_boxes(TRUTH), crs=crs)
    scores = building_metrics(pred, truth)
    assert scores["building_fn_merged"] == 2 and scores["building_fp_phantom"] == 1
