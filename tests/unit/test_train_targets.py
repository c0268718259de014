"""Training targets: the boundary band splits touching buildings; vehicle maps carry the labels."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import torch
from pyproj import CRS
from rasterio.transform import from_origin
from shapely.geometry import box

from baseline.detect.nets import VEHICLE_CHANNELS
from baseline.train.buildings import BuildingTrainSettings, building_loss
from baseline.train.data import LabelledScene
from baseline.train.targets import (
    VehicleObjects,
    building_targets,
    small_building_pixels,
    vehicle_maps,
)

CH = {n: i for i, n in enumerate(VEHICLE_CHANNELS)}


def _scene() -> LabelledScene:
    t = from_origin(0.0, 60.0, 0.3, 0.3)
    b = gpd.GeoDataFrame({"height_m": [12.0, 6.0]}, geometry=[box(10, 10, 25, 30), box(25, 12, 40, 28)], crs="EPSG:32635")
    return LabelledScene("t", ".", np.full((4, 200, 200), 800, np.uint16), np.ones((200, 200), bool), t,
                         CRS.from_epsg(32635), 0.3, 40.0, 180.0, buildings=b)


def test_space_to_depth_targets_sit_on_the_coarse_grid() -> None:
    t = building_targets(_scene(), 0.3, output_stride=2)
    assert t.image.shape == (4, 200, 200) and t.targets.shape == (4, 100, 100)
    assert t.transform.a == 0.6


def test_building_targets_mark_the_shared_wall_and_cast_shadows_north() -> None:
    t = building_targets(_scene(), 0.6)
    extent, boundary, shadow, height = t.targets.astype(np.float32)
    assert t.image.shape == (4, 100, 100)
    inv = ~t.transform
    col, row = (int(v) for v in inv @ (25.0, 20.0))  # on the shared wall
    assert extent[row, col] == 1 and boundary[row, col] == 1
    assert boundary[row, col - 2] == 0 and boundary[row, col + 2] == 0  # interiors either side
    assert t.masks[3, row, col] and not t.masks[3, row, col - 3]  # the shared wall is marked for weighting
    col_out, row_out = (int(v) for v in inv @ (10.0, 20.0))
    assert boundary[row_out, col_out] == 1 and not t.masks[3, row_out, col_out]  # an outer wall is not shared
    c, r = (int(v) for v in inv @ (17.5, 30 + 0.5 * 12 / np.tan(np.radians(40))))
    assert shadow[r, c] == 1 and extent[r, c] == 0  # north of the tall one, on the ground
    c, r = (int(v) for v in inv @ (17.5, 20.0))
    assert height[r, c] * 10 == pytest.approx(12.0, abs=0.01)
    assert not t.masks[2, 0, 0] and t.masks[2, r, c]  # height loss only on roofs


def test_small_footprints_and_their_ring_are_marked_and_large_ones_are_not() -> None:
    labels = np.zeros((20, 20), np.int32)
    labels[2:4, 2:4] = 1  # a kiosk
    labels[8:18, 8:18] = 2  # a house
    small = small_building_pixels(labels, np.array([4.0, 100.0]), small_m2=60.0)
    assert small[1:5, 1:5].all() and small.sum() == 16  # the 2x2 footprint and its one-pixel ring
    assert not small[8:18, 8:18].any()


def test_building_targets_mark_a_small_kiosk_beside_a_house() -> None:
    scene = _scene()
    kiosk = gpd.GeoDataFrame({"height_m": [3.0]}, geometry=[box(45, 45, 48, 48)], crs=scene.buildings.crs)
    scene.buildings = gpd.GeoDataFrame(
        {"height_m": [*scene.buildings["height_m"], 3.0]},
        geometry=[*scene.buildings.geometry, *kiosk.geometry], crs=scene.buildings.crs,
    )
    t = building_targets(scene, 0.6)
    inv = ~t.transform
    col, row = (int(v) for v in inv @ (46.5, 46.5))
    assert t.masks.shape[0] == 5 and t.masks[4, row, col]  # 9 m2: small
    col, row = (int(v) for v in inv @ (17.5, 20.0))
    assert not t.masks[4, row, col]  # 300 m2: not


def test_small_weight_makes_a_missed_kiosk_cost_more() -> None:
    y = torch.zeros(1, 4, 8, 8)
    m = torch.zeros(1, 5, 8, 8)
    m[:, 0] = 1.0  # segmentation counts everywhere
    y[0, 0, 1:3, 1:3] = 1.0  # a kiosk the network does not see
    m[0, 4, 0:4, 0:4] = 1.0  # marked small, with its ring
    out = torch.full((1, 4, 8, 8), -4.0)  # everything predicted background
    plain = building_loss(out, (y, m), BuildingTrainSettings(small_weight=0.0))
    weighted = building_loss(out, (y, m), BuildingTrainSettings(small_weight=4.0))
    assert weighted > plain + 0.3  # the missed kiosk now costs more (0.27 -> 0.64 in the extent term)
    out[0, 0, 1:3, 1:3] = 4.0  # the kiosk found: its pixels no longer cost
    assert building_loss(out, (y, m), BuildingTrainSettings(small_weight=4.0)) < plain


def test_vehicle_maps_put_the_labels_at_the_centre_cell() -> None:
    axis = np.array([[0.0, 1.0]])  # pointing east (along +col)
    objs = VehicleObjects(np.array([[31.0, 41.0]]), axis, np.array([4.5]), np.array([1.8]), np.array([1]),
                          np.array([[0.0, 2.0]]), True)
    target, weight = vehicle_maps(objs, 64, 0.3)
    r, c = 15, 20  # (31, 41) / stride 2
    assert target[CH["heat_large"], r, c] == 1.0 and target[CH["heat_car"]].max() == 0.0
    assert target[CH["off_row"], r, c] == pytest.approx(0.5) and target[CH["off_col"], r, c] == pytest.approx(0.5)
    assert np.exp(target[CH["log_length"], r, c]) == pytest.approx(4.5)
    assert target[CH["cos2a"], r, c] == pytest.approx(1.0)
    assert target[CH["disp_col"], r, c] == pytest.approx(2.0)
    assert weight[CH["log_length"], r, c] == 1.0 and weight[CH["off_row"], r + 1, c] == 0.0
    # the Gaussian is longer along the axis (cols) than across it (rows)
    assert target[CH["heat_large"], r, c + 2] > target[CH["heat_large"], r + 2, c]


def _coarse_scene(gsd_m: float) -> LabelledScene:
    """60 m square at ``gsd_m``: a bright 15 x 20 m roof on dark ground, labelled where it is drawn."""
    n = round(60.0 / gsd_m)
    t = from_origin(0.0, 60.0, gsd_m, gsd_m)
    image = np.full((4, n, n), 500, np.uint16)
    c0, c1, r0, r1 = round(10 / gsd_m), round(25 / gsd_m), round(30 / gsd_m), round(50 / gsd_m)
    image[:, r0:r1, c0:c1] = 3000  # ground x 10..25, y 10..30
    b = gpd.GeoDataFrame({"height_m": [9.0]}, geometry=[box(10, 10, 25, 30)], crs="EPSG:32635")
    return LabelledScene("coarse", ".", image, np.ones((n, n), bool), t, CRS.from_epsg(32635), gsd_m, None, None,
                         buildings=b)


@pytest.mark.parametrize("scene_gsd", [0.5, 0.2])
def test_targets_from_imagery_of_another_pixel_size_are_made_at_the_models_scale(scene_gsd: float) -> None:
    """0.5 m WorldView or 0.2 m aerial labels train a 0.3 m model at 0.3 m, image and labels on one grid."""
    t = building_targets(_coarse_scene(scene_gsd), 0.3, output_stride=2)
    assert t.image.shape == (4, 200, 200) and t.targets.shape == (4, 100, 100)
    assert t.transform.a == pytest.approx(0.6)
    inv = ~t.transform
    extent = t.targets[0].astype(bool)
    assert extent.sum() * 0.6**2 == pytest.approx(15 * 20, rel=0.05)
    roof = t.image[0].reshape(100, 2, 100, 2).mean(axis=(1, 3)) > 1750  # bright where the roof is drawn
    assert (roof == extent).mean() > 0.99
    col, row = (int(v) for v in inv @ (17.5, 20.0))
    assert extent[row, col] and not extent[row, col + 15]


def test_chips_from_imagery_of_another_pixel_size_are_at_the_models_gsd() -> None:
    from baseline.train.chipping import scene_chips

    chips = scene_chips(_coarse_scene(0.5), 0.3, chip_px=256, overlap_px=32)  # one chip: 200 px padded
    assert chips and all(c.gsd_m == pytest.approx(0.3) for c in chips)
    first = chips[0]
    assert first.transform.a == pytest.approx(0.3)
    x, y = first.transform * (0, 0)
    assert (x, y) == pytest.approx((0.0, 60.0))
    col, row = (int(v) for v in ~first.transform * (17.5, 20.0))  # on the roof
    assert first.pixels[0, row, col] == pytest.approx(0.3, abs=0.01)
    col, row = (int(v) for v in ~first.transform * (17.5, 40.0))  # on the ground north of it
    assert first.pixels[0, row, col] == pytest.approx(0.05, abs=0.01)
