"""Preprocess: the city grid, tiles that partition it, masks, and chips whose cores partition a tile."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import CRS

from baseline.core.chips import plan_windows
from baseline.errors import InvalidValueError
from baseline.ingest import open_scene
from baseline.preprocess import city_grid_for, plan_tiles, prepare_tile
from baseline.preprocess.masks import bright_cloud_mask
from tests.factories import write_cog_scene

UTM35 = CRS.from_epsg(32635)


@pytest.mark.parametrize(("rows", "cols", "size", "overlap"), [(1000, 700, 256, 32), (256, 256, 256, 32), (100, 900, 128, 0)])
def test_chip_cores_partition_the_grid(rows, cols, size, overlap):
    owner = np.zeros((rows, cols), dtype=int)
    for w in plan_windows(rows, cols, size, overlap):
        r0, c0, r1, c1 = w.core
        assert w.row <= r0 and r1 <= w.row + w.height and w.col <= c0 and c1 <= w.col + w.width
        owner[r0:r1, c0:c1] += 1
    assert (owner == 1).all()


def test_bad_overlap_is_rejected():
    with pytest.raises(InvalidValueError, match="overlap"):
        plan_windows(100, 100, 64, 40)


def test_tiles_partition_the_grid(tmp_path):
    scene = open_scene(write_cog_scene(tmp_path, shape=(300, 400)))
    grid = city_grid_for(scene, UTM35)
    assert (grid.width, grid.height) == (400, 300)
    tiles = plan_tiles(grid, 50.0)  # 120 m x 90 m scene -> 3 x 2 tiles
    assert len(tiles) == 6
    area = sum((t.core[2] - t.core[0]) * (t.core[3] - t.core[1]) for t in tiles)
    assert area == pytest.approx(120.0 * 90.0)


def test_prepare_tile_reads_aligned_pixels_and_masks(tmp_path):
    data = np.full((4, 300, 400), 1500, dtype=np.uint16)
    data[:, 100:110, 200:210] = 4000  # a planted bright square
    valid = np.ones((300, 400), bool)
    valid[:20] = False
    scene = open_scene(write_cog_scene(tmp_path, data=data, valid=valid))
    grid = city_grid_for(scene, UTM35)
    tile = plan_tiles(grid, 1000.0)[0]
    prepared = prepare_tile(scene, grid, tile, halo_m=0.0, chip_px=128, overlap_px=16)
    assert prepared.pixels.shape == (4, 300, 400)
    assert prepared.reflectance[0, 105, 205] == pytest.approx(0.4)
    assert prepared.reflectance[0, 150, 150] == pytest.approx(0.15)
    assert not prepared.valid[:20].any() and prepared.valid[20:].all()
    assert prepared.core_stats() == {"pixels": 120000, "in_image": 112000, "valid": 112000}
    assert all(c.pixels.shape == (4, 128, 128) for c in prepared.chips)
    # a chip's transform maps its pixel (0, 0) to its window's corner in the scene
    chip = prepared.chips[1]
    x, y = chip.transform @ (0, 0)
    assert (x, y) == pytest.approx(scene.transform @ (chip.window.col, chip.window.row))


def test_a_whole_window_chip_covers_the_valid_pixels_from_an_aligned_corner(tmp_path):
    data = np.full((4, 300, 400), 1500, dtype=np.uint16)
    valid = np.zeros((300, 400), bool)
    valid[45:260, 70:390] = True  # nodata around: a scene edge
    scene = open_scene(write_cog_scene(tmp_path, data=data, valid=valid))
    grid = city_grid_for(scene, UTM35)
    prepared = prepare_tile(scene, grid, plan_tiles(grid, 1000.0)[0], halo_m=0.0, chip_px=None, overlap_px=16)
    (chip,) = prepared.chips
    w = chip.window
    # the corner moves in by whole multiples of WINDOW_ALIGN_PX only, so a folding network keeps the tile's grid
    assert (w.row, w.col) == (32, 64) and (w.row + w.height, w.col + w.width) == (260, 390)
    assert w.core == (32, 64, 260, 390)  # the one chip owns all of it
    assert chip.pixels.shape == (4, 228, 326)  # not padded: the model pads to its own multiple
    assert chip.valid.sum() == valid.sum()
    x, y = chip.transform @ (0, 0)
    assert (x, y) == pytest.approx(scene.transform @ (w.col, w.row))


def test_a_whole_window_with_nothing_valid_has_no_chip(tmp_path):
    scene = open_scene(write_cog_scene(tmp_path, shape=(100, 100), valid=np.zeros((100, 100), bool)))
    grid = city_grid_for(scene, UTM35)
    assert prepare_tile(scene, grid, plan_tiles(grid, 1000.0)[0], halo_m=0.0, chip_px=None, overlap_px=0).chips == []


def test_prepare_tile_resamples_to_a_coarser_model_gsd(tmp_path):
    data = np.zeros((4, 300, 400), dtype=np.uint16) + 1000
    data[:, :, ::2] = 3000  # alternating columns average to 2000
    scene = open_scene(write_cog_scene(tmp_path, data=data))
    grid = city_grid_for(scene, UTM35, gsd_m=0.6)
    prepared = prepare_tile(scene, grid, plan_tiles(grid, 1000.0)[0], halo_m=0, chip_px=64, overlap_px=8)
    assert prepared.pixels.shape == (4, 150, 200)
    assert prepared.reflectance[:, 10:-10, 10:-10].mean() == pytest.approx(0.2, abs=1e-3)


def test_prepare_tile_reprojects_a_scene_from_another_zone(tmp_path):
    # the same ground written in UTM 34N lands on the UTM 35N grid
    scene = open_scene(write_cog_scene(tmp_path, crs="EPSG:32634", x0=719000.0, y0=6693000.0))
    grid = city_grid_for(scene, UTM35)
    assert grid.crs == UTM35
    prepared = prepare_tile(scene, grid, plan_tiles(grid, 10_000.0)[0], halo_m=0, chip_px=128, overlap_px=16)
    assert prepared.in_image.mean() > 0.5  # a rotated footprint fills most of its bounding grid
    assert 0.02 <= prepared.reflectance[0][prepared.valid].mean() <= 0.3


def test_bright_cloud_mask_ignores_roof_sized_bright_patches():
    refl = np.full((4, 200, 200), 0.1, dtype=np.float32)
    refl[:, 10:20, 10:20] = 0.6      # a white roof, 9 m across at 0.3 m: not a cloud
    refl[:, 100:200, 100:200] = 0.7  # a 30 m cloud
    mask = bright_cloud_mask(refl, 0.3, min_blob_m2=400.0)
    assert not mask[10:20, 10:20].any()
    assert mask[100:200, 100:200].all()


def test_scene_in_the_city_crs_keeps_its_own_grid(tmp_path):
    # an origin that is not on a 30 m lattice must not be snapped (that would resample every pixel)
    scene = open_scene(write_cog_scene(tmp_path, x0=385410.0, y0=6673150.0))
    for gsd, size in ((0.3, (400, 300)), (0.6, (200, 150))):
        grid = city_grid_for(scene, UTM35, gsd_m=gsd)
        assert (grid.x0, grid.y0) == (385410.0, 6673150.0)
        assert (grid.width, grid.height) == size


def test_aligned_read_equals_the_warped_read(tmp_path, monkeypatch):
    # a scene on the grid is read without warping; the pixels and masks must be what the warp gives
    from baseline.preprocess import tiles as tiles_mod

    valid = np.ones((300, 400), bool)
    valid[:, :30] = False
    scene = open_scene(write_cog_scene(tmp_path, valid=valid))
    grid = city_grid_for(scene, UTM35)
    tile = plan_tiles(grid, 50.0)[4]
    direct = prepare_tile(scene, grid, tile, halo_m=12.0, chip_px=128, overlap_px=16)
    monkeypatch.setattr(tiles_mod, "_aligned_offset", lambda src, grid: None)
    warped = prepare_tile(scene, grid, tile, halo_m=12.0, chip_px=128, overlap_px=16)
    assert direct.pixels.dtype == np.uint16
    np.testing.assert_array_equal(direct.pixels, warped.pixels)
    np.testing.assert_array_equal(direct.valid, warped.valid)
    assert direct.core_px == warped.core_px and direct.transform == warped.transform


def test_crop_tile_is_what_a_second_read_would_give(tmp_path):
    from baseline.preprocess import crop_tile

    scene = open_scene(write_cog_scene(tmp_path, shape=(400, 500)))
    grid = city_grid_for(scene, UTM35)
    for tile in plan_tiles(grid, 60.0):
        wide = prepare_tile(scene, grid, tile, halo_m=30.0, chip_px=128, overlap_px=16)
        read = prepare_tile(scene, grid, tile, halo_m=6.0, chip_px=96, overlap_px=8)
        cut = crop_tile(wide, grid, tile, halo_m=6.0, chip_px=96, overlap_px=8)
        assert cut is not None
        np.testing.assert_array_equal(cut.pixels, read.pixels)
        np.testing.assert_array_equal(cut.valid, read.valid)
        assert cut.core_px == read.core_px and cut.transform == read.transform
        assert [c.window for c in cut.chips] == [c.window for c in read.chips]
        assert all(c.dn_scale == scene.scale for c in cut.chips)


def test_class_band_by_index_equals_a_nearest_warp(tmp_path):
    from rasterio.enums import Resampling

    from baseline.preprocess.grid import CityGrid
    from baseline.preprocess.tiles import _read_classes_nearest, _read_on_grid

    rng = np.random.default_rng(3)
    scl = rng.integers(0, 12, size=(1, 12, 15), dtype=np.uint8)
    item = write_cog_scene(tmp_path, name="s2", data=scl, gsd=10.0, bands=("scl",), sensor="sentinel-2-l2a")
    # a fine grid that starts mid-pixel and runs past the file's right and bottom edges
    grid = CityGrid(UTM35, 385505.3, 6672894.7, 0.3, 600, 500)
    fast = _read_classes_nearest(item.with_suffix(".tif"), 1, grid)
    warped, _, _ = _read_on_grid(item.with_suffix(".tif"), [1], grid, grid.bounds, Resampling.nearest)
    assert fast.shape == (500, 600) and (fast > 0).mean() > 0.5 and (fast == 0).any()
    assert (fast == warped[0]).mean() > 0.995  # ties on pixel edges may round the other way
