"""Oriented boxes: encode/decode round trips, in CRS and through the network's decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rasterio.transform import from_origin

from baseline.core.chips import Chip, ChipWindow
from baseline.detect.boxes import OrientedBox, box_from_polygon, box_polygon
from baseline.detect.nets import VEHICLE_CHANNELS
from baseline.detect.vehicles import decode_maps, peaks_to_frame
from baseline.train.targets import VehicleObjects, vehicle_maps


@pytest.mark.parametrize("axis", [0.0, 17.0, 90.0, 135.5, 179.0])
def test_box_polygon_round_trip(axis: float) -> None:
    box = OrientedBox(385600.0, 6672800.0, 4.6, 1.8, axis)
    back = box_from_polygon(box_polygon(box))
    assert back.x == pytest.approx(box.x, abs=1e-3) and back.y == pytest.approx(box.y, abs=1e-3)
    assert back.length == pytest.approx(4.6, abs=1e-3) and back.width == pytest.approx(1.8, abs=1e-3)
    assert back.axis_deg == pytest.approx(axis % 180.0, abs=1e-3)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_centernet_targets_decode_back_to_the_boxes() -> None:
    """Encode two packed cars and a moving bus as targets; decode them as if the net were perfect."""
    gsd, size = 0.3, 128
    headings = np.array([30.0, 30.0, 100.0])  # compass; pixel frame is north-up
    rad = np.deg2rad(headings)
    axis = np.stack([-np.cos(rad), np.sin(rad)], axis=1)  # (drow, dcol)
    centre = np.array([[40.3, 40.7], [40.3 + 8.3 * axis[0, 1], 40.7 - 8.3 * axis[0, 0]], [90.2, 70.9]])
    speed = np.array([0.0, 0.0, 50 / 3.6])
    disp = axis * (speed * 0.2)[:, None]
    objs = VehicleObjects(centre, axis, np.array([4.5, 4.5, 11.0]), np.array([1.8, 1.8, 2.5]),
                          np.array([0, 0, 1]), disp, True)
    target, _ = vehicle_maps(objs, size, gsd)
    raw = target.copy()
    raw[:2] = _logit(target[:2])
    peaks = decode_maps(raw, score_threshold=0.5)
    assert len(peaks.row) == 3
    transform = from_origin(385500.0, 6672900.0, gsd, gsd)
    chip = Chip("s", ChipWindow(0, 0, size, size, (0, 0, size, size)), np.zeros((4, size, size), np.float32),
                np.ones((size, size), bool), transform, gsd)
    frame = peaks_to_frame(peaks, chip, 1.0, crs="EPSG:32635",
                           band_time_offsets_s={"blue": -0.1, "green": -0.05, "red": 0.0, "nir": 0.1})
    frame = frame.assign(x=frame.geometry.centroid.x).sort_values("x").reset_index(drop=True)
    xs, ys = transform @ (centre[:, 1], centre[:, 0])
    order = np.argsort(xs)
    for i, j in enumerate(order):
        c = frame.geometry[i].centroid
        assert math.hypot(c.x - xs[j], c.y - ys[j]) < 0.05
    bus = frame[frame["class"] == "large"].iloc[0]
    assert bool(bus["moving"]) and bus["speed_kmh"] == pytest.approx(50.0, abs=0.5)
    assert bus["heading_deg"] == pytest.approx(100.0, abs=0.5)
    cars = frame[frame["class"] == "car"]
    assert len(cars) == 2 and not cars["moving"].any()
    assert all(min(abs(h - 30.0) % 180, 180 - abs(h - 30.0) % 180) < 0.5 for h in cars["heading_deg"])
    assert set(VEHICLE_CHANNELS[:2]) == {"heat_car", "heat_large"}
