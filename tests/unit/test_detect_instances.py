"""Instance separation and polygonisation of building maps."""

from __future__ import annotations

import numpy as np
from rasterio.transform import from_origin
from scipy import ndimage

from baseline.detect.instances import polygons_from_labels, separate_instances


def _touching_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two rectangles sharing a wall at col 30 and their boundary band (as a model would give)."""
    truth = np.zeros((60, 60), dtype=np.int32)
    truth[10:40, 10:30] = 1
    truth[12:45, 30:50] = 2
    extent = (truth > 0).astype(np.float32)
    boundary = (ndimage.maximum_filter(truth, 3) != ndimage.minimum_filter(truth, 3)).astype(np.float32)
    return truth, extent * 0.95, boundary * 0.9


def test_touching_rectangles_become_two_polygons() -> None:
    truth, extent, boundary = _touching_pair()
    labels = separate_instances(extent, boundary)
    assert labels.max() == 2
    # every pixel of each truth rectangle went to one instance (the watershed regrows the seeds)
    for k in (1, 2):
        values, counts = np.unique(labels[truth == k], return_counts=True)
        assert counts.max() / counts.sum() > 0.95
    transform = from_origin(0.0, 60.0, 1.0, 1.0)
    polygons = polygons_from_labels(labels, transform)
    assert len(polygons) == 2
    areas = sorted(p.area for p in polygons.values())
    assert abs(areas[0] - 600) < 40 and abs(areas[1] - 660) < 40


def test_without_a_boundary_they_merge() -> None:
    # the boundary channel is what keeps them apart: with none predicted, one blob
    _, extent, boundary = _touching_pair()
    boundary[:, 29:31] = 0.0
    assert separate_instances(extent, boundary).max() == 1


def test_small_buildings_without_interior_are_kept_and_specks_dropped() -> None:
    extent = np.zeros((40, 40), dtype=np.float32)
    boundary = np.zeros_like(extent)
    extent[5:9, 5:9] = 1.0  # 16 px, all boundary: no seed survives
    boundary[5:9, 5:9] = 1.0
    extent[30:32, 30:32] = 1.0  # 4 px speck
    labels = separate_instances(extent, boundary, min_area_px=12)
    assert labels.max() == 1
    assert labels[6, 6] == 1 and labels[30, 30] == 0
