"""Instance separation and polygonisation of building maps."""

from __future__ import annotations

import numpy as np
from rasterio.transform import from_origin
from scipy import ndimage

from baseline.detect.instances import polygons_from_labels, separate_instances, split_seeds


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


def _faint_wall() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The touching pair, its shared wall only faintly predicted (0.4), and a fainter line
    (0.35, a roof fixture's edge) that cuts a 3-px strip (84 px) off building 1's interior."""
    truth, extent, boundary = _touching_pair()
    boundary[:, 29:31] = np.where(truth[:, 29:31] > 0, 0.4, boundary[:, 29:31])
    boundary[10:40, 14] = 0.35
    return truth, extent, boundary


def test_a_faint_wall_splits_the_seed_at_a_stricter_threshold() -> None:
    truth, extent, boundary = _faint_wall()
    assert separate_instances(extent, boundary, boundary_threshold=0.5).max() == 1
    labels = separate_instances(extent, boundary, boundary_threshold=0.5, split_thresholds=(0.3,), min_split_px=100)
    assert labels.max() == 2
    for k in (1, 2):
        values, counts = np.unique(labels[truth == k], return_counts=True)
        assert counts.max() / counts.sum() > 0.95
    # thresholds not stricter than the seeds' own are ignored
    assert separate_instances(extent, boundary, boundary_threshold=0.5, split_thresholds=(0.5, 0.6)).max() == 1
    # parts as small as the fixture's strip count too: the roof is cut in two (why the size is tuned)
    assert separate_instances(extent, boundary, split_thresholds=(0.3,), min_split_px=50).max() == 3


def test_split_seeds_needs_two_large_parts() -> None:
    _, extent, boundary = _faint_wall()
    seeds, _ = ndimage.label((extent > 0.5) & (boundary < 0.5))
    assert seeds.max() == 1
    split = split_seeds(seeds, boundary, 0.3, min_part_px=100)
    assert len(np.unique(split[split > 0])) == 2
    # the strip is left unseeded (the watershed gives it to its neighbour), the rest stays seeded
    assert (split[11:39, 11:14] == 0).all() and (split[11:39, 15:29] > 0).all()
    # a split part lies inside the seed it came from
    assert ((split > 0) <= (seeds > 0)).all()
    # fewer than two parts large enough: the seed stays whole, untouched
    assert np.array_equal(split_seeds(seeds, boundary, 0.3, min_part_px=10_000), seeds)


def test_small_buildings_without_interior_are_kept_and_specks_dropped() -> None:
    extent = np.zeros((40, 40), dtype=np.float32)
    boundary = np.zeros_like(extent)
    extent[5:9, 5:9] = 1.0  # 16 px, all boundary: no seed survives
    boundary[5:9, 5:9] = 1.0
    extent[30:32, 30:32] = 1.0  # 4 px speck
    labels = separate_instances(extent, boundary, min_area_px=12)
    assert labels.max() == 1
    assert labels[6, 6] == 1 and labels[30, 30] == 0
