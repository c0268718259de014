"""The Sentinel-2 truck detector's optional centre-heatmap head, and how it is trained.

Decoding is tested on maps drawn by hand: two trucks 20 m apart whose
coverage merges into one blob are one object when objects start at coverage
peaks, and two when they start at the centre heatmap's peaks. The network
with the head is loaded from a card like the shipped one; the training
targets put each truck's centre inside its coverage, and the focal loss
prefers a heatmap peaked there. Trucks too dark to be targets are marked,
and ``--dark ignore`` leaves them out of the losses; the scorer tallies
found trucks by paint.
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
import torch
from safetensors.torch import save_file

from baseline.detect.s2_trucks import (
    CENTRE_OUTPUT,
    OUTPUTS,
    TruckNet,
    TruckParams,
    _gaussian_peak_offset,
    extract_objects,
    load_truck_net,
    truck_maps,
)
from scripts import train_s2_trucks

SIZE = 24


def gaussian(row: float, col: float, sigma: float = 0.6, peak: float = 0.9) -> np.ndarray:
    """A heatmap over pixel centres (row + 0.5, col + 0.5) peaked at fractional ``(row, col)``."""
    rr, cc = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return (peak * np.exp(-((rr - row) ** 2 + (cc - col) ** 2) / (2 * sigma**2))).astype(np.float32)


@pytest.mark.parametrize(("row", "col"), [(10.5, 10.5), (10.8, 11.2), (12.3, 9.6)])
def test_sub_pixel_offset_recovers_a_gaussians_centre(row, col):
    heat = gaussian(row, col)
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert r + 0.5 + _gaussian_peak_offset(heat, r, c, axis=0) == pytest.approx(row, abs=1e-3)
    assert c + 0.5 + _gaussian_peak_offset(heat, r, c, axis=1) == pytest.approx(col, abs=1e-3)
    # at the image edge there is no neighbour to fit: no offset
    assert _gaussian_peak_offset(heat, 0, c, axis=0) == 0.0


def two_close_trucks() -> dict[str, np.ndarray]:
    """Maps of two trucks 2 pixels apart along a row, both moving 2 px east between B02 and B04."""
    cover = np.zeros((SIZE, SIZE), dtype=np.float32)
    cover[12, 10:14] = (0.15, 0.22, 0.25, 0.15)  # one blob with one peak: their coverage has merged
    disp = np.zeros((4, SIZE, SIZE), dtype=np.float32)
    disp[1], disp[3] = 2.0, 1.0  # B02 -> B04 and B02 -> B03, columns
    centre = np.maximum(gaussian(12.5, 10.5), gaussian(12.5, 12.5))
    return {"cover": cover, "disp": disp, "centre": centre}


def test_centre_peaks_keep_apart_two_trucks_whose_coverage_merged():
    maps = two_close_trucks()
    anom = np.zeros((3, SIZE, SIZE), dtype=np.float32)
    allowed = np.ones((SIZE, SIZE), dtype=bool)
    params = TruckParams(min_score=0.3, min_area_px=0.2)
    by_cover = extract_objects(maps["cover"], maps["disp"], anom, np.ones(2), allowed, 0.0,
                               TruckParams(min_score=0.08, min_area_px=0.2))
    assert len(by_cover) == 1
    by_centre = extract_objects(maps["cover"], maps["disp"], anom, np.ones(2), allowed, 0.0, params, maps["centre"])
    assert sorted((round(o.row, 2), round(o.col, 2)) for o in by_centre) == [(12.5, 10.5), (12.5, 12.5)]
    for o in by_centre:
        assert o.score == pytest.approx(0.9, abs=1e-3)
        assert (o.d_row, o.d_col) == pytest.approx((0.0, 2.0))
    # moved on to B04 time by that fraction of the displacement
    moved = extract_objects(maps["cover"], maps["disp"], anom, np.ones(2), allowed, 0.5, params, maps["centre"])
    assert sorted(round(o.col, 2) for o in moved) == [11.5, 13.5]
    # the threshold applies to the heat: above both peaks, nothing
    high = TruckParams(min_score=0.95, min_area_px=0.2)
    assert extract_objects(maps["cover"], maps["disp"], anom, np.ones(2), allowed, 0.0, high, maps["centre"]) == []


def test_network_with_centre_head_loads_from_its_card(tmp_path):
    net = TruckNet(width=8, dilations=(1, 2), centre=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "model.safetensors"))
    outputs = [*OUTPUTS, "moving_car_logit (auxiliary)", CENTRE_OUTPUT]
    (tmp_path / "card.json").write_text(json.dumps({"architecture": {"width": 8, "dilations": [1, 2],
                                                                      "outputs": outputs}}))
    loaded = load_truck_net(str(tmp_path))
    assert loaded.centre
    features = np.random.default_rng(0).normal(size=(10, 16, 20)).astype(np.float32)
    cover, disp, centre = truck_maps(features, loaded)
    assert cover.shape == centre.shape == (16, 20) and disp.shape == (4, 16, 20)
    assert ((centre > 0) & (centre < 1)).all()
    # a card without the head (1.0.0's) gives a network without it, and no heatmap
    from baseline.detect.weights import default_models_dir

    plain = load_truck_net(str(default_models_dir() / "s2-trucks" / "1.0.0"))
    assert not plain.centre
    assert truck_maps(features, plain)[2] is None


def test_add_centre_paints_one_positive_and_a_gaussian():
    heat = np.zeros((10, 10), dtype=np.float32)
    train_s2_trucks.add_centre(heat, 4.3, 6.8)
    assert heat[4, 6] == 1.0 and (heat >= 1.0).sum() == 1
    assert heat[4, 7] == pytest.approx(math.exp(-(0.2**2 + 0.7**2) / (2 * 0.6**2)), rel=1e-5)
    assert heat[0, 0] == 0.0
    train_s2_trucks.add_centre(heat, 4.6, 7.4)  # a second truck keeps the larger value where they overlap
    assert heat[4, 7] == 1.0 and heat[4, 6] == 1.0
    train_s2_trucks.add_centre(heat, -5.0, -5.0)  # off the image: nothing


def test_open_country_targets_put_each_centre_on_its_trucks_coverage():
    samples = train_s2_trucks.open_country(np.random.default_rng(3))
    target = samples[0][1]
    assert target.shape[0] == train_s2_trucks.N_TARGETS
    centres = np.argwhere(target[6] >= 1.0)
    assert len(centres) > 0
    assert (target[0][tuple(centres.T)] > 0.05).all()


def test_focal_loss_prefers_a_heatmap_peaked_at_the_centre():
    heat = np.zeros((1, 12, 12), dtype=np.float32)
    train_s2_trucks.add_centre(heat[0], 6.5, 6.5)
    target = torch.from_numpy(heat)
    right = torch.logit(torch.from_numpy(np.clip(heat, 0.01, 0.95)))
    wrong = torch.logit(torch.from_numpy(np.clip(np.roll(heat, 3, axis=2), 0.01, 0.95)))
    assert float(train_s2_trucks.centre_focal_loss(right, target)) < float(train_s2_trucks.centre_focal_loss(wrong, target))
    # no centre in the crop: normalised by one, not divided by zero
    assert math.isfinite(float(train_s2_trucks.centre_focal_loss(right, torch.zeros_like(target))))


def test_displacement_weight_scales_only_the_displacement_loss():
    target = torch.zeros((1, train_s2_trucks.N_TARGETS, 8, 8))
    target[0, 0, 3:5, 3:5] = 0.3  # a truck's coverage, moving 2 px east between B02 and B04
    target[0, 2, 3:5, 3:5] = 2.0
    raw = torch.zeros((1, 7, 8, 8))
    raw[0, 0] = torch.logit(target[0, 0].clamp(0.01, 0.99))
    losses = [float(train_s2_trucks.loss_fn(raw, target, w)) for w in (0.2, 0.6)]
    # the network read no displacement: the error is 2 px on every truck pixel, weighed by the weight
    assert losses[1] - losses[0] == pytest.approx(0.4 * 2.0, rel=1e-5)
    raw[0, 2, 3:5, 3:5] = 2.0  # read right: the weight no longer matters
    assert float(train_s2_trucks.loss_fn(raw, target, 0.2)) == pytest.approx(float(train_s2_trucks.loss_fn(raw, target, 0.6)))


def test_training_refuses_a_displacement_weight_that_is_not_above_zero(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["train_s2_trucks.py", "--disp-weight", "0", "--seeds", "1000"])
    with pytest.raises(SystemExit) as exit_info:
        train_s2_trucks.main()
    assert exit_info.value.code == 2
    assert "--disp-weight 0.0" in capsys.readouterr().err


def _open_country_with_a_dark_truck() -> tuple[int, np.ndarray]:
    """The seed and targets of the first open-country scene (from seed 0 up) with a dark moving truck."""
    for seed in range(40):
        target = train_s2_trucks.open_country(np.random.default_rng(seed))[0][1]
        if target[train_s2_trucks.IGNORE_CHANNEL].any():
            return seed, target
    raise AssertionError("no open-country scene of seeds 0-39 drew a dark moving truck")


def test_dark_trucks_are_marked_to_ignore_and_get_no_target():
    seed, target = _open_country_with_a_dark_truck()
    ignore = target[train_s2_trucks.IGNORE_CHANNEL]
    assert set(np.unique(ignore)) <= {0.0, 1.0}
    # every truck with a target is bright: the centres lie outside the ignored pixels unless a
    # bright truck drives beside a dark one, which a single scene rarely holds
    centres = np.argwhere(target[train_s2_trucks.CENTRE_CHANNEL] >= 1.0)
    assert len(centres) and ignore[tuple(centres.T)].mean() < 0.5
    # the same scene with every truck a target (contrast 0): nothing is left to ignore, and the
    # dark truck's pixels now hold coverage
    every = train_s2_trucks.open_country(np.random.default_rng(seed), contrast=0.0)[0][1]
    assert not every[train_s2_trucks.IGNORE_CHANNEL].any()
    assert every[0][ignore > 0].sum() > target[0][ignore > 0].sum()


def test_ignore_mode_leaves_dark_trucks_out_of_the_coverage_and_centre_losses():
    target = torch.zeros((1, train_s2_trucks.N_TARGETS, 8, 8))
    target[0, train_s2_trucks.IGNORE_CHANNEL, 2:6, 2:6] = 1.0  # a dark truck's pixels
    quiet = torch.full((1, 7, 8, 8), -6.0)
    firing = quiet.clone()
    firing[0, 0, 3:5, 3:5] = 2.0  # the network sees a truck there (coverage and centre)
    firing[0, train_s2_trucks.CENTRE_CHANNEL, 3:5, 3:5] = 2.0
    loss = train_s2_trucks.loss_fn
    assert float(loss(firing, target, dark="negative")) > float(loss(quiet, target, dark="negative")) + 0.1
    assert float(loss(firing, target, dark="ignore")) == pytest.approx(float(loss(quiet, target, dark="ignore")), abs=1e-6)
    with pytest.raises(ValueError, match="dark='none'"):
        loss(quiet, target, dark="none")


def test_scoring_tallies_found_trucks_by_paint():
    from scripts import score_s2_trucks

    vehicles = gpd.GeoDataFrame({
        "vehicle_id": [1, 2, 3, 4, 5], "class": ["large", "large", "large", "car", "large"],
        "moving": [True, True, True, True, False], "colour": [0, 0, 1, 0, 1],  # white, white, black
    }, geometry=[shapely.Point(i, 0) for i in range(5)])
    tallies = score_s2_trucks.found_by_paint(vehicles, (1, 3, 4, 5))
    # the moving car (4) and the standing truck (5) are not moving trucks, whatever was matched
    assert tallies == {"white": [1, 2], "black": [1, 1]}
    assert score_s2_trucks.paint_line(tallies) == "white 0.50 (1/2), black 1.00 (1/1)"
