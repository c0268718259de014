"""The real Sentinel-2 and Landsat samples load through the local-archive source.

Each scene's CRS, band order, pixel size, pixels and in-image mask are
compared with what rasterio reads from the file directly. The samples live in
``../shared/data`` (MANIFEST.md there); the tests skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import CRS

from baseline.core.scene import SENSOR_S2
from baseline.errors import SceneError
from baseline.ingest import ArchiveSource
from baseline.ingest.archive import SENSOR_LANDSAT_L1
from baseline.preprocess import city_grid_for, plan_tiles, prepare_tile

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def sample(folder: str) -> Path:
    path = DATA / folder
    if not path.is_dir():
        pytest.skip(f"real sample {folder} not present under {DATA}")
    return path


def read_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All bands and rasterio's own dataset mask, read directly."""
    with rasterio.open(path) as src:
        return src.read(), src.dataset_mask() > 0


def test_sentinel2_seurasaari(tmp_path):
    folder = sample("s2_helsinki_seurasaari")
    (scene,) = ArchiveSource(folder, cache_dir=tmp_path).scenes()  # the NDVI and Corine rasters are not scenes
    assert scene.scene_id == "S2B_RGBNIR_20210926_Seurasaari" and scene.sensor == SENSOR_S2
    assert scene.crs.to_epsg() == 32635
    assert scene.bands == ("blue", "green", "red", "nir")  # B02 B03 B04 B08 (SOURCE.md)
    assert scene.gsd_m == 10.0 and scene.shape == (118, 68) and scene.scale == pytest.approx(1e-4)
    assert scene.acquired_at.date().isoformat() == "2021-09-26"
    assert 20.0 < scene.sun_elevation_deg < 35.0  # late September, mid-morning, 60 N
    data, _ = read_file(folder / "S2B_RGBNIR_20210926_Seurasaari.tif")
    np.testing.assert_array_equal(scene.data.values, data)
    island = (data != 0).any(axis=0)  # 0 outside the island, no nodata declared
    np.testing.assert_array_equal(scene.valid.values, island)
    assert island.sum() == 4556

    grid = city_grid_for(scene, CRS.from_epsg(32635))
    prepared = prepare_tile(scene, grid, plan_tiles(grid, 5000.0)[0], halo_m=0.0, chip_px=64, overlap_px=8)
    np.testing.assert_array_equal(prepared.in_image, island)
    np.testing.assert_array_equal(prepared.pixels[:, island], data[:, island] * prepared.valid[island])
    assert prepared.valid.sum() > 0.9 * island.sum()  # a clear day: the bright-cloud rule keeps most


def test_sentinel2_trucks_in_file_band_order(tmp_path):
    folder = sample("s2_trucks_test")
    describe = {"S2_test_data.tif": {
        "sensor": "sentinel-2-l2a",
        "bands": ["B04", "B03", "B02", "B08"],  # S2TD's order (SOURCE.md)
        # the sample does not carry its acquisition date: a stand-in; nothing below depends on it
        "datetime": "2018-07-22T10:30:00Z",
        "scale": 1 / 255,  # assumed 0-255 byte scaling (values 3 to 155); not documented with the sample
    }}
    (scene,) = ArchiveSource(folder, describe=describe, cache_dir=tmp_path).scenes()
    assert scene.crs.to_epsg() == 32632
    assert scene.bands == ("red", "green", "blue", "nir")
    assert scene.gsd_m == pytest.approx(10.0, abs=0.01)
    data, mask = read_file(folder / "S2_test_data.tif")
    np.testing.assert_array_equal(scene.data.values[scene.band_index("blue")], data[2])
    np.testing.assert_array_equal(scene.data.values[scene.band_index("red")], data[0])
    assert mask.all() and scene.valid.values.all()  # no zeros, no nodata: all in-image

    grid = city_grid_for(scene, CRS.from_epsg(32632))
    prepared = prepare_tile(scene, grid, plan_tiles(grid, 5000.0)[0], halo_m=0.0, chip_px=64, overlap_px=8)
    inner = prepared.in_image[2:-2, 2:-2]  # pixels are resampled (10.002 x 9.999 m): edges may fall out
    assert inner.all()
    arrived = prepared.pixels[:, prepared.valid]
    assert prepared.valid.mean() > 0.9 and arrived.min() >= 3.0 and arrived.max() <= 155.0


def test_landsat8_ciudad_del_este_level1(tmp_path):
    folder = sample("landsat8_ciudad_del_este")
    (scene,) = ArchiveSource(folder, cache_dir=tmp_path).scenes()
    assert scene.sensor == SENSOR_LANDSAT_L1 and scene.scale == 1.0  # digital numbers, not reflectance
    assert scene.crs.to_epsg() == 32621
    assert scene.bands == ("blue", "green", "red")  # B2 B3 B4, from the band descriptions; no NIR
    assert scene.gsd_m == 30.0 and scene.shape == (600, 600)
    assert scene.acquired_at.date().isoformat() == "2020-05-18"
    path = folder / "LC08_L1TP_224078_20200518_B2B3B4_crop_ciudad_del_este_foz.tif"
    data, mask = read_file(path)
    with rasterio.open(path) as src:
        window = src.read(window=((100, 140), (200, 260)))
    np.testing.assert_array_equal(scene.data[:, 100:140, 200:260].values, window)
    np.testing.assert_array_equal(scene.valid.values, mask & (data != 0).any(axis=0))
    assert scene.valid.values.all()
    grid = city_grid_for(scene, CRS.from_epsg(32621))
    with pytest.raises(SceneError, match="no band 'nir'"):  # preprocess needs NIR: said, not guessed
        prepare_tile(scene, grid, plan_tiles(grid, 50_000.0)[0], halo_m=0.0, chip_px=64, overlap_px=8)


def test_landsat7_raleigh_described(tmp_path):
    folder = sample("landsat7_raleigh_nc")
    describe = {"landsat_multiband.tif": {
        "sensor": "landsat-l1",
        "mission": "LE07",
        "bands": ["B1", "B2", "B3", "B4", "B5"],  # ETM+ bands 1-5 (SOURCE.md)
        # the file does not carry its date (GRASS NC sample lsat7_2000): a stand-in date, nominal time
        "datetime": "2000-05-24",
        # the file's CRS is NAD83 / North Carolina written without its EPSG code: relabelled, not warped
        "crs": "EPSG:32119",
    }}
    (scene,) = ArchiveSource(folder, describe=describe, cache_dir=tmp_path).scenes()  # labels/strata skipped
    assert scene.crs.to_epsg() == 32119
    assert scene.bands == ("blue", "green", "red", "nir", "swir16")
    assert scene.gsd_m == 28.5 and scene.shape == (443, 489)
    data, mask = read_file(folder / "landsat_multiband.tif")
    np.testing.assert_array_equal(scene.valid.values, mask)
    assert (~mask).sum() == 33209  # the -99999 nodata around the clip
    np.testing.assert_array_equal(scene.data.values[:, mask], data[:, mask])
    # a window through the Scene's lazy pixels, nodata edge included, as the file has it
    np.testing.assert_array_equal(scene.data[:, 0:50, 0:80].values, data[:, 0:50, 0:80])
    assert scene.valid[0:50, 0:80].values.sum() == mask[0:50, 0:80].sum() > 0
