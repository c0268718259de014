"""Whole tile windows and overlapping chips find the same buildings and vehicles, up to chip seams."""

from __future__ import annotations

import pytest

from baseline.config import load_config
from baseline.run.pipeline import run_pipeline
from tests.e2e.conftest import evaluate_json, write_config
from tests.factories import render_crop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    return render_crop(tmp_path_factory.mktemp("scene") / "crop", (385700.0, 6672000.0, 386000.0, 6672300.0))


def test_whole_windows_score_like_chips(crop, tmp_path):
    scores = {}
    for name, whole in (("chips", []), ("whole", ["buildings", "vehicles"])):
        config = load_config(write_config(tmp_path / f"{name}.yaml", preprocess={"tile_px": 512, "whole_window": whole}))
        summary = run_pipeline(config, out=tmp_path / name, scene_dir=crop, show_progress=False)
        assert summary.tiles_total == 4 and not summary.tiles_failed
        scores[name] = evaluate_json(tmp_path / name, crop / "truth")
    chips, whole = scores["chips"], scores["whole"]
    assert chips["building_truth_count"] > 20 and chips["vehicle_truth_count"] > 50  # enough to compare
    # a crop this small moves either way by a few buildings (whole windows scored higher here); what must
    # not happen is a broken path: buildings lost, a grid shifted by a folded pixel (IoU), heights gone wrong
    assert whole["vehicle_f1"] >= chips["vehicle_f1"] - 0.02
    assert whole["building_f1"] >= chips["building_f1"] - 0.05
    assert whole["building_iou_mean"] >= chips["building_iou_mean"] - 0.02
    assert whole["height_mae_m"] <= chips["height_mae_m"] + 1.0
