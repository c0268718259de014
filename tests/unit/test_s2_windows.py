"""Sentinel-2 stages window by window: cores tile the scene, and a pixel's result does not depend on the cut."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr

from baseline.core.scene import Scene
from baseline.preprocess.sentinel2 import plan_windows, scene_reflectance, window_reflectance


def test_cores_tile_the_scene_once_and_halos_stay_inside():
    shape = (130, 75)
    windows = plan_windows(shape, halo_px=7, window_px=32)
    cover = np.zeros(shape, dtype=int)
    for w in windows:
        cover[w.core_slices] += 1
        r0, r1, c0, c1 = w.read
        assert 0 <= r0 <= w.core[0] and w.core[1] <= r1 <= shape[0]
        assert 0 <= c0 <= w.core[2] and w.core[3] <= c1 <= shape[1]
        assert w.core[0] - r0 == min(7, w.core[0]) and r1 - w.core[1] == min(7, shape[0] - w.core[1])
    assert (cover == 1).all()
    assert len(windows) == 5 * 3
    with pytest.raises(ValueError, match="window_px"):
        plan_windows(shape, halo_px=-1)


def _corridor_scene(seed: int) -> tuple[Scene, gpd.GeoDataFrame]:
    """A corridor render (motorway through fields) as a Sentinel-2 Scene in memory, with its carriageways."""
    from baseline.synth.corridor import CorridorParams, render_corridor
    from baseline.synth.sensors import SENTINEL2

    r = render_corridor(CorridorParams.with_random_sun(seed))
    counts = np.clip(np.rint(r.reflectance[:4] * 1e4), 0, 65535).astype(np.uint16)
    scene = Scene(
        f"corridor-{seed}", "sentinel-2-l2a", xr.DataArray(counts, dims=("band", "y", "x")),
        xr.DataArray(r.valid, dims=("y", "x")), r.grid.crs, r.transform, 10.0, ("blue", "green", "red", "nir"),
        datetime(2024, 6, 1, 10, 30, tzinfo=UTC), 40.0, 160.0, band_time_offsets_s=dict(SENTINEL2.time_offsets_s),
    )
    roads = r.roads if hasattr(r.roads, "geometry") else gpd.GeoDataFrame(geometry=list(r.roads), crs=r.grid.crs)
    return scene, roads


def test_a_window_reads_the_same_pixels_as_the_whole_scene():
    scene, _ = _corridor_scene(9000)
    refl, valid = scene_reflectance(scene)
    for w in plan_windows(scene.shape, halo_px=5, window_px=50):
        r0, r1, c0, c1 = w.read
        part, ok = window_reflectance(scene, w)
        assert np.array_equal(part, refl[:, r0:r1, c0:c1]) and np.array_equal(ok, valid[r0:r1, c0:c1])


@pytest.mark.parametrize("seed", [9000, 9001])
def test_trucks_found_window_by_window_are_those_of_one_pass(seed):
    from baseline.detect.s2_trucks import trucks_table

    scene, roads = _corridor_scene(seed)
    whole = trucks_table(scene, roads, pixels=scene_reflectance(scene))
    assert len(whole) >= 5  # the render has moving trucks to find
    windowed = trucks_table(scene, roads, window_px=64)  # four windows, cores meeting across the motorway
    assert len(windowed) == len(whole)
    key = ["score", "speed_kmh", "heading_deg"]
    a = whole.sort_values("score").reset_index(drop=True)
    b = windowed.sort_values("score").reset_index(drop=True)
    np.testing.assert_allclose(b[key].to_numpy(float), a[key].to_numpy(float), rtol=1e-5, atol=1e-4)
    assert np.allclose(a.geometry.x, b.geometry.x) and np.allclose(a.geometry.y, b.geometry.y)


def test_builtup_maps_window_by_window_equal_one_pass():
    from baseline.detect.s2_builtup import builtup_maps, builtup_scene_maps

    scene, _ = _corridor_scene(9000)
    refl, valid = scene_reflectance(scene)
    fraction, height = builtup_maps(refl, valid, scene.sun_elevation_deg, scene.sun_azimuth_deg)
    f, h, ok = builtup_scene_maps(scene, window_px=48)
    assert np.array_equal(ok, valid)
    np.testing.assert_allclose(f, fraction, atol=1e-5)
    np.testing.assert_allclose(h, height, atol=1e-4)
    assert fraction.max() > 0  # not a trivially empty map


def test_a_core_on_the_scene_edge_keeps_trucks_placed_just_past_it():
    from baseline.detect.s2_trucks import in_core

    rows, cols = np.array([10.0, 10.0, 10.0, -0.4, 63.9]), np.array([128.03, 64.0, 63.99, 70.0, 70.0])
    # the right-hand core of a 128 x 128 scene: columns 64-128, rows 0-64
    kept = in_core(rows, cols, (0, 64, 64, 128), (128, 128))
    assert kept.tolist() == [True, True, False, True, True]
    # an inner core keeps its half-open bounds on every side
    assert in_core(np.array([64.0, 63.99]), np.array([70.0, 70.0]), (0, 64, 64, 128), (128, 128)).tolist() == [False, True]
    assert not in_core(np.array([10.0]), np.array([128.03]), (0, 64, 64, 100), (128, 128))[0]
