"""Sentinel-2 built-up fraction and height: truth rasters, H3 cell sums, the network, a held-out render."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch
from affine import Affine

from baseline.aggregate.builtup import CELL_COLUMNS, builtup_cells, cell_polygons, pixel_cells
from baseline.detect.s2_builtup import (
    BuiltupNet,
    builtup_maps,
    footprint_rasters,
    input_features,
    load_builtup_net,
    sun_channels,
)

ROOT = Path(__file__).resolve().parents[2]
CRS = "EPSG:32635"
TRANSFORM = Affine(10.0, 0.0, 385850.0, 0.0, -10.0, 6672150.0)
"""A 10 m grid in central Helsinki (the held-out block's top-left corner)."""
CROP_FRACTION_MAE_BAR = 0.05
"""Cell fraction MAE the held-out crop below must stay under: measured 0.042 with the shipped 1.0.0 (three cells;
the issue's target is 0.05)."""


def test_footprint_rasters_fraction_and_area_weighted_height() -> None:
    # pixel (0, 0) spans x 0-10, y 90-100; a 10 x 5 m building of 10 m and a 10 x 2 m one of 30 m in it
    t = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 100.0)
    low = shapely.box(0.0, 95.0, 10.0, 100.0)
    high = shapely.box(0.0, 90.0, 10.0, 92.0)
    frac, height = footprint_rasters(np.array([low, high], dtype=object), np.array([10.0, 30.0]), t, (2, 2))
    assert frac[0, 0] == pytest.approx(0.7)
    assert height[0, 0] == pytest.approx((50 * 10.0 + 20 * 30.0) / 70)
    assert frac[1, 1] == 0.0 and height[1, 1] == 0.0


def test_footprint_rasters_overlap_goes_to_the_taller() -> None:
    t = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 10.0)
    whole = shapely.box(0.0, 0.0, 10.0, 10.0)
    half = shapely.box(0.0, 0.0, 10.0, 5.0)
    frac, height = footprint_rasters(np.array([half, whole], dtype=object), np.array([40.0, 20.0]), t, (1, 1))
    assert frac[0, 0] == pytest.approx(1.0)
    assert height[0, 0] == pytest.approx(30.0)


def test_h3_cells_give_exact_means_and_volume() -> None:
    rng = np.random.default_rng(3)
    shape = (45, 40)
    fraction = rng.uniform(0.0, 1.0, shape)
    height = rng.uniform(3.0, 60.0, shape)
    valid = rng.random(shape) > 0.1
    cells = pixel_cells(TRANSFORM, shape, CRS, 9)
    table = builtup_cells(fraction, height, valid, TRANSFORM, CRS, 9)
    assert tuple(table.columns) == CELL_COLUMNS
    assert len(table) >= 3  # a 450 x 400 m grid spans several res-9 cells
    assert table["pixels"].sum() == fraction.size
    for row in table.itertuples():
        sel = (cells == row.h3) & valid
        f, h = fraction[sel], height[sel]
        assert row.valid_pixels == sel.sum()
        assert row.builtup_fraction == pytest.approx(f.mean(), rel=1e-12)
        assert row.height_mean_m == pytest.approx((f * h).sum() / f.sum(), rel=1e-12)
        assert row.built_volume_m3 == pytest.approx((f * h).sum() * 100.0, rel=1e-12)
        assert row.footprint_area_m2 == pytest.approx(f.sum() * 100.0, rel=1e-12)


def test_h3_cells_hand_values_and_pixel_centre_rule() -> None:
    shape = (45, 40)
    fraction = np.full(shape, 0.5)
    height = np.full(shape, 12.0)
    fraction[:, 20:] = 0.0  # nothing built in the east half: its height must not count
    height[:, 20:] = 99.0
    valid = np.ones(shape, dtype=bool)
    table = builtup_cells(fraction, height, valid, TRANSFORM, CRS, 9)
    cells = pixel_cells(TRANSFORM, shape, CRS, 9)
    for row in table.itertuples():
        sel = cells == row.h3
        west = int((sel[:, :20]).sum())
        assert row.builtup_fraction == pytest.approx(0.5 * west / sel.sum())
        if west:
            assert row.height_mean_m == pytest.approx(12.0)
        else:
            assert math.isnan(row.height_mean_m)
        assert row.built_volume_m3 == pytest.approx(west * 0.5 * 100.0 * 12.0)
    # a pixel's cell is the cell of its centre
    x, y = TRANSFORM * (7.5, 3.5)
    import h3
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(CRS, 4326, always_xy=True).transform(x, y)
    assert cells[3, 7] == h3.latlng_to_cell(lat, lon, 9)


def test_cell_polygons_hold_their_pixels() -> None:
    shape = (45, 40)
    cells = pixel_cells(TRANSFORM, shape, CRS, 9)
    ids = np.unique(cells)
    polys = cell_polygons(ids, CRS)
    rows, cols = np.nonzero(cells == ids[0])
    x, y = TRANSFORM * (cols + 0.5, rows + 0.5)
    assert shapely.contains_xy(polys[0], x, y).all()


def test_sun_channels_point_away_from_the_sun() -> None:
    south = sun_channels(45.0, 180.0)  # sun in the south: shadows point north (up, negative rows)
    assert south == pytest.approx([-1.0, 0.0, 1.0], abs=1e-6)
    west = sun_channels(30.0, 270.0)  # sun in the west: shadows point east (positive columns)
    assert west == pytest.approx([0.0, math.sqrt(3.0), math.sqrt(3.0)], abs=1e-5)
    with pytest.raises(ValueError):
        sun_channels(0.0, 180.0)


def test_network_maps_have_the_image_shape_and_range() -> None:
    torch.manual_seed(0)
    net = BuiltupNet(8, (1, 2, 1)).eval()
    rng = np.random.default_rng(0)
    refl = rng.uniform(0.0, 0.4, (4, 23, 31)).astype(np.float32)
    valid = np.ones((23, 31), dtype=bool)
    valid[:3] = False
    frac, height = builtup_maps(refl, valid, 40.0, 180.0, net=net)
    assert frac.shape == height.shape == (23, 31)
    assert frac.dtype == height.dtype == np.float32
    assert (frac >= 0).all() and (frac <= 1).all() and (height >= 0).all()
    assert (frac[:3] == 0).all() and (height[:3] == 0).all()
    assert input_features(refl, valid)[:, :3].max() == 0.0


def test_shipped_network_loads_and_is_small() -> None:
    net = load_builtup_net()
    n = sum(p.numel() for p in net.parameters())
    assert 3_000 <= n <= 200_000
    assert 1 + 2 * sum(net.dilations) >= 31  # sees shadows 15 pixels away on either side
    rng = np.random.default_rng(1)
    frac, height = builtup_maps(rng.uniform(0.0, 0.3, (4, 40, 50)), np.ones((40, 50), bool), 30.0, 200.0)
    assert frac.shape == (40, 50) and (frac >= 0).all() and (frac <= 1).all() and (height >= 0).all()


def _data_module():  # scripts/ is not a package
    spec = importlib.util.spec_from_file_location("s2_builtup_data", ROOT / "scripts" / "s2_builtup_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("s2_builtup_data", module)
    spec.loader.exec_module(module)
    return module


def test_held_out_render_crop_cell_fraction_error() -> None:
    """A render of the held-out south-east block (a seed and sun never trained on): the cells wholly inside
    the crop, at least half valid, must keep their built-up fraction MAE under the bar."""
    data = _data_module()
    torch.set_num_threads(1)
    box = (data.TEST_X_MIN, 6671450.0, 386480.0, data.TEST_Y_MAX)
    s = data.city_sample(2104, 33.0, 215.0, bbox=box)
    t = Affine(s["gsd"], 0.0, s["x0"], 0.0, -s["gsd"], s["y0"])
    frac, height = builtup_maps(s["reflectance"], s["valid"], *s["sun"])
    cells = pixel_cells(t, s["valid"].shape, CRS, 9)
    pred = builtup_cells(frac, height, s["valid"], t, CRS, 9, cells=cells)
    true = builtup_cells(s["fraction"], s["height"], s["valid"], t, CRS, 9, cells=cells)
    h, w = s["valid"].shape
    image = shapely.box(s["x0"], s["y0"] - 10.0 * h, s["x0"] + 10.0 * w, s["y0"]).buffer(5.0, join_style="mitre")
    inside = np.array([image.contains(p) for p in cell_polygons(true["h3"].to_numpy(), CRS)])
    keep = inside & (true["valid_fraction"].to_numpy() >= 0.5)
    assert keep.sum() >= 2
    mae = float(np.abs(pred["builtup_fraction"][keep] - true["builtup_fraction"][keep]).mean())
    assert mae < CROP_FRACTION_MAE_BAR, f"cell fraction MAE {mae:.3f} on the held-out crop"
