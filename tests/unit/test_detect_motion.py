"""Motion from band timing: a car drawn displaced per band is measured at its speed."""

from __future__ import annotations

import numpy as np
import pytest

from baseline.detect.motion import band_velocities

OFFSETS = np.array([-0.10, -0.05, 0.0, 0.10])  # blue, green, red, nir
GSD = 0.3


def _scene(speed_ms: float, heading_rc: tuple[float, float]) -> np.ndarray:
    """A 4.5 x 1.8 m car at (50, 60) moving along ``heading_rc``, drawn where each band sees it."""
    rr, cc = np.mgrid[0:100, 0:120].astype(float) + 0.5
    image = np.full((4, 100, 120), 0.08, np.float32)
    colour = [0.05, 0.2, 0.45, 0.3]  # a red car: contrast differs per band
    ar, ac = heading_rc
    for b, dt in enumerate(OFFSETS):
        r0 = 50.0 + ar * speed_ms * dt / GSD
        c0 = 60.0 + ac * speed_ms * dt / GSD
        along = (rr - r0) * ar + (cc - c0) * ac
        across = -(rr - r0) * ac + (cc - c0) * ar
        body = (np.abs(along) <= 4.5 / GSD / 2) & (np.abs(across) <= 1.8 / GSD / 2)
        image[b][body] = colour[b]
    return image


@pytest.mark.parametrize("speed_kmh", [0.0, 30.0, 60.0])
@pytest.mark.parametrize("heading", [(0.0, 1.0), (-0.6, 0.8)])
def test_measures_speed_and_direction(speed_kmh: float, heading: tuple[float, float]) -> None:
    image = _scene(speed_kmh / 3.6, heading)
    # the detector's axis may point backwards: the sign of the speed then says so
    for sign in (1.0, -1.0):
        v, score = band_velocities(
            image, np.array([50.0]), np.array([60.0]), np.array([sign * heading[0]]), np.array([sign * heading[1]]),
            np.array([4.5 / GSD]), np.array([1.8 / GSD]), OFFSETS, GSD,
        )
        assert score[0] > 0.5
        assert sign * v[0] * 3.6 == pytest.approx(speed_kmh, abs=2.5)


def test_without_band_timing_nothing_is_measured() -> None:
    v, score = band_velocities(_scene(10.0, (0.0, 1.0)), np.array([50.0]), np.array([60.0]), np.array([0.0]),
                               np.array([1.0]), np.array([15.0]), np.array([6.0]), np.zeros(4), GSD)
    assert v[0] == 0.0 and np.isnan(score[0])


@pytest.mark.parametrize("centre", [(50.0, 60.0), (3.0, 117.0)])
def test_reflectance_around_each_vehicle_matches_the_whole_chip(centre: tuple[float, float], monkeypatch) -> None:
    """Counts are turned into reflectance only around each vehicle: the same result as the whole chip, edges too."""
    from baseline.detect import motion

    image = np.clip(_scene(40 / 3.6, (0.0, 1.0)) + np.random.default_rng(0).normal(0, 0.01, (4, 100, 120)), 0, None)
    image[:, :2] = 2.0  # saturated: clipped to the models' maximum either way
    scale = 1e-4
    counts = np.round(image / scale).astype(np.uint16)
    args = (np.array([centre[0]]), np.array([centre[1]]), np.array([0.0]), np.array([1.0]),
            np.array([4.5 / GSD]), np.array([1.8 / GSD]), OFFSETS, GSD)
    v_patch, s_patch = band_velocities(counts, *args, dn_scale=scale)
    monkeypatch.setattr(motion, "_patch", lambda pixels, rr, cc, dn: (motion.to_reflectance(pixels, dn), 0, 0))
    v_whole, s_whole = band_velocities(counts, *args, dn_scale=scale)
    assert v_patch[0] == v_whole[0] and s_patch[0] == s_whole[0]
