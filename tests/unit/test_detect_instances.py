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


def test_watershed_only_where_contested_gives_the_full_watershed() -> None:
    """Flooding only the mask parts that hold two or more seed labels gives exactly the labels of
    flooding the whole image, for parts with one label, with none, and with several (touching
    buildings, one label in two pieces), on a relief without ties. With ties (a flat relief),
    which seed wins a tied pixel is the heap's arbitrary order; here it depends only on the part
    itself, so a building's labels no longer change with what else lies in the tile."""
    from skimage.segmentation import watershed

    from baseline.detect.instances import watershed_where_contested

    rng = np.random.default_rng(3)
    for _ in range(4):
        mask = ndimage.binary_opening(ndimage.gaussian_filter(rng.random((120, 140)), 3) > 0.5)
        relief = rng.random(mask.shape).astype(np.float32)
        seeds, _n = ndimage.label(mask & (rng.random(mask.shape) < 0.02))
        seeds[seeds % 5 == 0] = 0  # some parts of the mask get no seed at all
        seeds[seeds == 3] = 4      # one label in two separate pieces
        expected = watershed(relief, markers=seeds, mask=mask).astype(np.int32)
        got = watershed_where_contested(relief, seeds, mask)
        parts, m = ndimage.label(mask)
        held = [len(np.unique(seeds[(parts == p) & (seeds > 0)])) for p in range(1, m + 1)]
        assert max(held) >= 2 and 1 in held and 0 in held  # every case is exercised
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, expected)

        # ties: a part's labels are what flooding that part alone gives, whatever else is in the image
        flat = (np.round(relief * 3) / 3).astype(np.float32)
        got = watershed_where_contested(flat, seeds, mask)
        for p in range(1, m + 1):
            alone = watershed(flat, markers=np.where(parts == p, seeds, 0), mask=parts == p)
            np.testing.assert_array_equal(got[parts == p], alone[parts == p])
    empty = np.zeros((5, 5), dtype=bool)
    assert not watershed_where_contested(np.zeros((5, 5), np.float32), np.zeros((5, 5), np.int32), empty).any()
