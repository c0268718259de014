"""The Sentinel-2 corridor renderer: repeatable, traffic on its roads, trucks drawn per band."""

from __future__ import annotations

import numpy as np
import shapely

from baseline.synth.corridor import CorridorParams, render_corridor


def test_same_seed_same_pixels_and_truth():
    a = render_corridor(CorridorParams(seed=11))
    b = render_corridor(CorridorParams(seed=11))
    assert np.array_equal(a.reflectance, b.reflectance)
    assert a.vehicles.equals(b.vehicles)
    c = render_corridor(CorridorParams(seed=12))
    assert not np.array_equal(a.reflectance, c.reflectance)


def test_moving_vehicles_lie_on_carriageways_at_plausible_speeds():
    for seed in range(5):
        scene = render_corridor(CorridorParams(seed=seed))
        v = scene.vehicles
        moving = v[v["moving"]]
        assert len(moving) > 10
        roads = shapely.union_all(scene.roads.geometry.values)
        assert shapely.within(shapely.centroid(moving.geometry.values), roads).all()
        trucks = moving[moving["class"] == "large"]
        assert trucks["speed_kmh"].between(10, 95).all()
        assert trucks["length_m"].between(8, 18).all()
        assert set(v["class"]) <= {"car", "large"}
        assert scene.reflectance.shape == (4, 128, 128) and scene.reflectance.dtype == np.float32


def test_a_fast_white_truck_leaves_its_blue_copy_behind_its_red_one():
    """Without noise, the blue-minus-red difference around a fast white truck is positive behind it, negative ahead."""
    scene = render_corridor(CorridorParams(seed=3, noise=False))
    v = scene.vehicles
    fast = v[(v["class"] == "large") & (v["speed_kmh"] > 60) & (v["colour"] == 0)]
    assert len(fast), "seed 3 has a fast white truck"
    truck = fast.iloc[0]
    inv = ~scene.transform
    heading = np.radians(truck["heading_deg"])
    step = truck["speed_kmh"] / 3.6 * 1.005 * 0.5  # half the B02 -> B04 travel
    c = truck.geometry.centroid
    ahead = inv * (c.x + step * np.sin(heading), c.y + step * np.cos(heading))
    behind = inv * (c.x - 2 * step * np.sin(heading), c.y - 2 * step * np.cos(heading))
    diff = scene.reflectance[0] - scene.reflectance[2]  # blue minus red

    def at(colrow: tuple[float, float]) -> float:
        col, row = (int(np.floor(x)) for x in colrow)
        return float(diff[row, col])

    assert at(behind) > at(ahead)
