"""The spatial split behind the Atlanta fine-tune: each half trains alone, the strip and the other half are no-data."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
from rasterio.transform import from_origin
from shapely.geometry import box

from baseline.train.data import load_labelled_scene
from baseline.train.targets import building_targets
from scripts.atlanta_split import chip_folds, half_of, write_training_folder


def _chip() -> tuple[np.ndarray, np.ndarray, object, gpd.GeoDataFrame]:
    transform = from_origin(1000.0, 2000.0, 0.3, 0.3)  # 60 x 30 m
    image = np.full((4, 100, 200), 0.08, np.float32)
    labels = gpd.GeoDataFrame(geometry=[box(1005, 1980, 1015, 1990),    # west
                                        box(1026, 1980, 1033, 1990),    # west, its east wall 3 m from the line
                                        box(1040, 1975, 1050, 1985)],   # east
                              crs="EPSG:32616")
    return image, np.ones((100, 200), bool), transform, labels


def test_folds_cut_at_the_middle_and_swap_halves() -> None:
    image, _, transform, labels = _chip()
    folds = chip_folds(transform, image.shape[2], buffer_m=5.0)
    assert [(f.train, f.test) for f in folds] == [("west", "east"), ("east", "west")]
    assert all(f.x_split == 1030.0 for f in folds)
    assert len(half_of(labels, folds[0], "west")) == 2 and len(half_of(labels, folds[0], "east")) == 1


def test_the_training_folder_holds_one_half_and_leaves_the_strip_out(tmp_path: Path) -> None:
    image, valid, transform, labels = _chip()
    fold = chip_folds(transform, image.shape[2], buffer_m=5.0)[0]  # train west
    counts = write_training_folder(image, valid, transform, "EPSG:32616", labels, fold, tmp_path / "west")
    scene = load_labelled_scene(tmp_path / "west")
    assert counts["labels"] == 2 and len(scene.buildings) == 2
    x = transform.c + 0.3 * (np.arange(200) + 0.5)
    assert scene.valid[:, x < 1025].all()  # the west half, up to the strip
    assert not scene.valid[:, x >= 1025].any()  # strip (1025-1035) and east half: no-data
    assert scene.image[:, scene.valid].min() == 800  # reflectance 0.08 x 10000, kept
    targets = building_targets(scene, 0.3)
    assert targets.masks[0].sum() == scene.valid.sum()  # losses apply on the training half only
