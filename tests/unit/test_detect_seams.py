"""A building two tiles both reported on their seam is kept once; neighbours within a tile are left alone."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from baseline.detect.seams import merge_tile_buildings, seam_copies

CRS = "EPSG:3067"


def _tile(boxes: list[tuple[float, float, float, float]], scores: list[float]) -> gpd.GeoDataFrame:
    geometry = list(shapely.box(*np.asarray(boxes, dtype=float).T)) if boxes else []
    return gpd.GeoDataFrame({"score": scores, "height_m": [10.0] * len(boxes)}, geometry=geometry, crs=CRS)


def test_the_copy_with_the_lower_score_is_dropped():
    left = _tile([(0, 0, 10, 10), (90, 0, 110, 10)], [0.9, 0.7])  # the second sits on the seam at x = 100
    right = _tile([(91, 0, 111, 10), (200, 0, 210, 10)], [0.8, 0.9])
    merged = merge_tile_buildings([left, right], CRS)
    assert len(merged) == 3
    kept = merged[merged.geometry.intersects(shapely.box(95, 0, 105, 10))]
    assert len(kept) == 1 and kept["score"].iloc[0] == 0.8
    assert "_tile" not in merged.columns and list(merged.columns) == list(left.columns)


def test_overlapping_footprints_of_one_tile_are_not_touched():
    one = _tile([(0, 0, 10, 10), (2, 0, 12, 10)], [0.9, 0.8])  # overlapping by 80%, but one tile's
    assert len(merge_tile_buildings([one], CRS)) == 2


def test_neighbours_across_a_seam_that_overlap_a_little_are_both_kept():
    left = _tile([(90, 0, 100.5, 10)], [0.9])
    right = _tile([(100, 0, 110, 10)], [0.9])
    assert len(merge_tile_buildings([left, right], CRS)) == 2


def test_a_footprint_copied_by_three_tiles_is_kept_once():
    geoms = shapely.box(*np.array([(0, 0, 10, 10), (0.5, 0, 10.5, 10), (0, 0.5, 10, 10.5)], float).T)
    drop = seam_copies(geoms, np.array([0, 1, 2]), np.array([0.5, 0.9, 0.7]))
    assert drop.tolist() == [True, False, True]


def test_no_buildings_anywhere_gives_an_empty_table_with_the_columns():
    merged = merge_tile_buildings([_tile([], []), _tile([], [])], CRS)
    assert merged.empty and "score" in merged.columns
