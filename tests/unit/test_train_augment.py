"""Augmentation moves labels with the pixels; the sensor draws change what they say and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from baseline.train.augment import (
    PAN_WEIGHTS,
    Dihedral,
    SensorAugment,
    coarser_sensor,
    leaf_off,
    panchromatic,
    shadow_light,
)


@pytest.mark.parametrize("t", [False, True])
@pytest.mark.parametrize("fr", [False, True])
@pytest.mark.parametrize("fc", [False, True])
def test_dihedral_moves_points_and_vectors_with_the_raster(t: bool, fr: bool, fc: bool) -> None:
    size = 16
    image = np.zeros((1, size, size))
    image[0, 3, 10] = 1.0  # pixel (3, 10): centre at (3.5, 10.5)
    image[0, 5, 11] = 2.0  # one step of (drow, dcol) = (2, 1) further on
    d = Dihedral(t, fr, fc)
    out = d.raster(image)
    p = d.points(np.array([[3.5, 10.5]]), size)[0]
    v = d.vectors(np.array([[2.0, 1.0]]))[0]
    assert out[0, int(p[0]), int(p[1])] == 1.0
    q = p + v
    assert out[0, int(q[0]), int(q[1])] == 2.0


# --- sensor-spanning draws -------------------------------------------------------------------------------------


def _scene(seed: int = 0) -> np.ndarray:
    """(blue, green, red, nir) 64 x 64: grey roofs on the left half, vegetation on the right."""
    rng = np.random.default_rng(seed)
    image = np.empty((4, 64, 64), np.float32)
    image[:, :, :32] = np.array([0.12, 0.12, 0.13, 0.15], np.float32)[:, None, None]
    image[:, :, 32:] = np.array([0.03, 0.07, 0.04, 0.35], np.float32)[:, None, None]
    return image * rng.uniform(0.9, 1.1, size=(1, 64, 64)).astype(np.float32)


def test_coarser_sensor_blurs_detail_and_keeps_the_grid() -> None:
    checker = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)[None]  # a 1-pixel pattern
    same = coarser_sensor(checker, 1.0)
    assert same is checker
    out = coarser_sensor(checker, 2.0)
    assert out.shape == checker.shape
    assert out.std() < 0.1 * checker.std()  # the pattern is below a 2x coarser sensor's resolution
    assert abs(out.mean() - checker.mean()) < 0.01
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (1, 64, 1))
    np.testing.assert_allclose(coarser_sensor(ramp, 1.7)[:, 8:-8, 8:-8], ramp[:, 8:-8, 8:-8], atol=0.01)


def test_panchromatic_is_one_weighted_grey_in_every_band() -> None:
    image = _scene()
    out = panchromatic(image)
    assert out.shape == image.shape
    np.testing.assert_allclose(out, np.broadcast_to(out[0], out.shape))
    np.testing.assert_allclose(out[0], np.tensordot(np.asarray(PAN_WEIGHTS), image, axes=1), rtol=1e-5)


def test_leaf_off_changes_vegetation_only() -> None:
    image = _scene()
    out = leaf_off(image, 1.0)
    np.testing.assert_array_equal(out[:, :, :32], image[:, :, :32])  # roofs (NDVI ~0.07) untouched
    ndvi_before = (image[3] - image[2]) / (image[3] + image[2])
    ndvi_after = (out[3] - out[2]) / (out[3] + out[2])
    assert ndvi_before[:, 32:].min() > 0.7
    assert ndvi_after[:, 32:].max() < 0.3  # bare branches are not green
    visible = image[:3, :, 32:].mean(axis=0)
    np.testing.assert_allclose(out[:3, :, 32:].mean(axis=0), visible, rtol=1e-4)  # texture and brightness kept
    half = leaf_off(image, 0.5)
    assert ndvi_after[0, 40] < ((half[3] - half[2]) / (half[3] + half[2]))[0, 40] < ndvi_before[0, 40]


def test_shadow_light_scales_shadow_and_leaves_sunlit_ground() -> None:
    image = _scene()
    shadow = np.zeros((64, 64), np.float32)
    shadow[10:30, 10:30] = 1.0
    out = shadow_light(image, shadow, 1.5)
    np.testing.assert_allclose(out[:, 15:25, 15:25], image[:, 15:25, 15:25] * 1.5, rtol=1e-4)
    np.testing.assert_allclose(out[:, 40:, 40:], image[:, 40:, 40:])
    np.testing.assert_allclose(shadow_light(image, shadow, 1.0), image)


def test_sensor_augment_draws_follow_their_probabilities() -> None:
    image = _scene()
    off = SensorAugment(p_coarser=0.0, p_pan=0.0, p_leaf_off=0.0, p_sky=0.0)
    np.testing.assert_array_equal(off(image, np.random.default_rng(1)), image)
    pan = SensorAugment(p_coarser=0.0, p_pan=1.0, p_leaf_off=0.0, p_sky=0.0)
    out = pan(image, np.random.default_rng(1))
    np.testing.assert_allclose(out, np.broadcast_to(out[0], out.shape))
    every = SensorAugment(p_coarser=1.0, p_pan=0.0, p_leaf_off=1.0, p_sky=1.0)
    a = every(image, np.random.default_rng(7), np.ones((64, 64), np.float32))
    b = every(image, np.random.default_rng(7), np.ones((64, 64), np.float32))
    np.testing.assert_array_equal(a, b)  # a seeded draw repeats exactly
    assert not np.allclose(a, image)


def test_building_settings_name_their_augmentation() -> None:
    from baseline.train.buildings import BuildingTrainSettings, _settings_dict

    assert _settings_dict(BuildingTrainSettings(augment="sensor"))["sensor_augment"]["max_gsd_m"] == pytest.approx(0.6)
    assert "sensor_augment" not in _settings_dict(BuildingTrainSettings(augment="basic"))
    with pytest.raises(ValueError, match="augment"):
        BuildingTrainSettings(augment="fancy").sensor_augment()
