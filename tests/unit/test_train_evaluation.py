"""A vehicle model card's per-context rates: places decided over the scene's map, as a run decides them."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from pyproj import CRS
from shapely.geometry import box

from baseline.train import evaluation
from baseline.train.data import LabelledScene
from tests.factories import road_map_context

CRS35 = CRS.from_epsg(32635)


def _vehicles(rows: list[tuple[float, float, str, bool, str]]) -> gpd.GeoDataFrame:
    """Vehicles heading east at (x, y) with class, moving and the truth's context."""
    x, y, cls, moving, context = map(list, zip(*rows, strict=True))
    return gpd.GeoDataFrame(
        {"class": cls, "moving": moving, "heading_deg": 90.0, "speed_kmh": np.where(moving, 30.0, 0.0),
         "context": context, "on_road": [c in ("lane", "queue") or m for c, m in zip(context, moving, strict=True)]},
        geometry=[box(a - 2.2, b - 0.9, a + 2.2, b + 0.9) for a, b in zip(x, y, strict=True)], crs=CRS35,
    )


TRUTH = [
    (10, 1.6, "car", True, "lane"), (30, -1.6, "car", False, "queue"), (50, 1.6, "large", True, "lane"),
    (10, 4.4, "car", False, "kerb"), (20, 4.4, "car", False, "kerb"), (30, -4.4, "car", False, "kerb"),
    (25, 30, "car", False, "car_park"), (35, 30, "car", False, "car_park"), (45, 30, "car", False, "car_park"),
    (80, 30, "car", False, "off_road"),
]


def _scene(tmp_path) -> LabelledScene:
    return LabelledScene(
        scene_id="hand", path=tmp_path, image=np.zeros((4, 10, 10), np.uint16), valid=np.ones((10, 10), bool),
        transform=Affine(10, 0, 0, 0, -10, 100), crs=CRS35, gsd_m=10.0, sun_elevation_deg=40.0,
        sun_azimuth_deg=180.0, vehicles=_vehicles(TRUTH),
    )


@pytest.mark.parametrize("with_map", [True, False])
def test_kerb_and_car_park_rates_come_from_the_map(tmp_path, monkeypatch, with_map):
    # the detector finds every vehicle but one kerb car, and adds a false car in the car park
    found = [r for r in TRUTH if r[:2] != (20, 4.4)] + [(55, 40, "car", False, "car_park")]
    predicted = _vehicles(found).drop(columns=["context"])
    monkeypatch.setattr(evaluation, "predict_vehicles", lambda *a, **k: (predicted.copy(), 0.1))
    monkeypatch.setattr(evaluation, "scene_map_context", lambda scene: road_map_context() if with_map else None)
    ev = evaluation.evaluate_vehicles_model(None, [_scene(tmp_path)])
    assert (ev["tp"], ev["fp"], ev["fn"]) == (9, 1, 1)
    if not with_map:  # no map, no truth/roads.parquet: only motion can be placed
        assert set(ev["per_context"]) == {"moving"}
        return
    ctx = ev["per_context"]
    assert (ctx["kerb"]["tp"], ctx["kerb"]["fp"], ctx["kerb"]["fn"]) == (2, 0, 1)
    assert (ctx["car_park"]["tp"], ctx["car_park"]["fp"], ctx["car_park"]["fn"]) == (3, 1, 0)
    assert (ctx["on_road"]["tp"], ctx["on_road"]["fn"]) == (3, 0)  # the queued car is on the road, not moving
    assert (ctx["moving"]["tp"], ctx["moving"]["fp"], ctx["moving"]["fn"]) == (2, 0, 0)
    by_class = ev["per_class_context"]
    assert by_class["large"]["on_road"]["tp"] == 1 and "kerb" not in by_class["large"]
    assert by_class["car"]["car_park"] == ctx["car_park"]
    scene = ev["scenes"]["hand"]
    assert scene["vehicle_precision_ctx_car_park"] == pytest.approx(0.75)
    assert scene["on_road_accuracy"] == 1.0


def test_sigma_floor_makes_the_interval_cover_what_it_says() -> None:
    import numpy as np

    from baseline.train.tuning import sigma_floor

    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.05, 0.5, 4000)  # the rays agree closely...
    err = rng.normal(0.0, np.hypot(sigma, 1.0))  # ...but every height shares a 1 m error
    floor = sigma_floor(err, sigma)
    assert 0.9 < floor < 1.1
    assert np.mean(np.abs(err) <= 1.96 * np.hypot(sigma, floor)) >= 0.95
    assert np.mean(np.abs(err) <= 1.96 * sigma) < 0.5  # what the rays alone claimed
    assert sigma_floor(rng.normal(0.0, 0.1, 4000), np.full(4000, 1.0)) == 0.0  # a cautious sigma stays
    assert sigma_floor(err[:19], sigma[:19]) is None


def test_learned_heights_take_the_offset_of_their_size_class() -> None:
    from baseline.detect.buildings import learned_with_offset

    offsets = [(60.0, -3.0), (30.0, -11.0)]  # unsorted on purpose: the smallest class that fits wins
    assert learned_with_offset(15.0, 12.0, offsets) == 4.0
    assert learned_with_offset(15.0, 45.0, offsets) == 12.0
    assert learned_with_offset(15.0, 60.0, offsets) == 15.0  # larger than every class: unchanged
    assert learned_with_offset(8.0, 10.0, offsets) == 1.0  # never under a metre
    assert learned_with_offset(15.0, 10.0, []) == 15.0  # cards without offsets behave as before


def test_size_class_offsets_need_enough_footprints() -> None:
    from baseline.train.tuning import size_class_offsets

    area = np.array([10, 12, 20, 25, 28, 40, 45, 200.0])
    residual = np.array([-11, -12, -10, -13, np.nan, -4, -5, 3.0])
    offsets, record = size_class_offsets(area, residual, bins=(30.0, 60.0), min_count=4)
    assert offsets == [[30.0, -11.5]]  # the NaN does not count; 40-45 m2 has 2, too few
    assert record["learned heights of footprints 30-60 m2: n, median true - learned (m)"] == [2, None]
