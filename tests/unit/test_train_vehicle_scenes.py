"""Vehicle training refuses scenes of mixed pixel sizes: its network learns sizes and motion in pixels."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from baseline.errors import InputFileError
from baseline.train.vehicles import _load


def _labelled_folder(folder: Path, gsd_m: float) -> Path:
    folder.mkdir()
    n = round(30 / gsd_m)
    with rasterio.open(folder / "image.tif", "w", driver="GTiff", width=n, height=n, count=4, dtype="uint16",
                       crs="EPSG:32635", transform=from_origin(500000.0, 6670030.0, gsd_m, gsd_m)) as dst:
        dst.write(np.full((4, n, n), 900, np.uint16))
    cars = gpd.GeoDataFrame(geometry=[box(500010.0, 6670010.0, 500014.5, 6670011.8)], crs="EPSG:32635")
    cars.to_file(folder / "vehicles.geojson", driver="GeoJSON")
    return folder


def test_scenes_of_one_pixel_size_load(tmp_path: Path) -> None:
    scenes = _load([_labelled_folder(tmp_path / "a", 0.3), _labelled_folder(tmp_path / "b", 0.3)])
    assert [len(s.vehicles) for s in scenes] == [1, 1]


def test_a_scene_of_another_pixel_size_is_refused_by_name(tmp_path: Path) -> None:
    a, b = _labelled_folder(tmp_path / "a", 0.3), _labelled_folder(tmp_path / "b", 0.5)
    with pytest.raises(InputFileError, match=r"b: pixel size 0.5 m, but .*a has 0.3 m") as err:
        _load([a, b])
    assert "resample" in str(err.value.hint)
