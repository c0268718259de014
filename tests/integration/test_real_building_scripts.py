"""The data paths of ``scripts/score_helsinki3d.py`` and ``scripts/score_spacenet_atlanta.py``.

Both read ``../shared/data`` (never copied into the repository) and skip when
it is absent. Checked here: the Helsinki 3D footprints load, reproject and keep
their measured heights; the translation into the OSM extract is rigid and fits;
the SpaceNet pan chip becomes a 4-band 0.3 m input of the right size and band
means; and the shipped building model scores the chip within a minute. Full
renders and pipeline runs are too slow for a test and are left to the scripts.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import shapely

from scripts import score_helsinki3d, score_spacenet_atlanta

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HELSINKI = DATA / score_helsinki3d.FOLDER / score_helsinki3d.FOOTPRINTS_FILE
SPACENET = DATA / score_spacenet_atlanta.IMAGE


@pytest.fixture(scope="module")
def kalasatama():
    if not HELSINKI.is_file():
        pytest.skip(f"real sample {score_helsinki3d.FOLDER} not present under {DATA}")
    return score_helsinki3d.load_footprints(DATA, "kalasatama")


@pytest.fixture(scope="module")
def pan_chip() -> score_spacenet_atlanta.PanChip:
    if not SPACENET.is_file():
        pytest.skip(f"real sample {score_spacenet_atlanta.IMAGE} not present under {DATA}")
    return score_spacenet_atlanta.load_chip(DATA)


@pytest.mark.shared_data
def test_kalasatama_footprints_and_heights(kalasatama) -> None:
    assert len(kalasatama) == 61
    assert kalasatama.crs.to_epsg() == 32635
    heights = kalasatama[score_helsinki3d.HEIGHT_COLUMN].to_numpy(dtype=float)
    assert np.isfinite(heights).all()
    assert heights.max() == pytest.approx(118.1, abs=0.5)
    assert heights.min() == pytest.approx(1.7, abs=0.1)
    assert (heights > 50).sum() >= 1
    # Kalasatama: about 388000 E, 6673700 N in UTM 35N; a few hundred metres across
    x0, y0, x1, y1 = kalasatama.total_bounds
    assert 387000 < x0 < x1 < 389000 and 6673000 < y0 < y1 < 6674500
    assert max(x1 - x0, y1 - y0) < 600


@pytest.mark.shared_data
def test_viikki_footprints() -> None:
    if not HELSINKI.is_file():
        pytest.skip(f"real sample {score_helsinki3d.FOLDER} not present under {DATA}")
    viikki = score_helsinki3d.load_footprints(DATA, "viikki")
    assert len(viikki) == 23
    assert viikki[score_helsinki3d.HEIGHT_COLUMN].max() < 50


@pytest.mark.shared_data
def test_translation_into_the_extract_is_rigid_and_fits(kalasatama) -> None:
    aoi = score_helsinki3d.extract_aoi()
    assert not kalasatama.union_all().intersects(aoi)  # why the footprints must be moved
    dx, dy, fits = score_helsinki3d.translation_to_extract(kalasatama, aoi, lowest_sun_deg=25.0)
    assert fits
    assert dx == round(dx) and dy == round(dy)
    moved = score_helsinki3d.translate(kalasatama, dx, dy)
    assert moved.crs == kalasatama.crs
    assert aoi.contains(moved.union_all())
    np.testing.assert_allclose(moved.geometry.area.to_numpy(), kalasatama.geometry.area.to_numpy(), rtol=1e-9)
    back = score_helsinki3d.translate(moved, -dx, -dy)
    assert all(shapely.equals_exact(a, b, 1e-6) for a, b in zip(back.geometry.values, kalasatama.geometry.values,
                                                                   strict=True))
    np.testing.assert_array_equal(moved[score_helsinki3d.HEIGHT_COLUMN].to_numpy(),
                                  kalasatama[score_helsinki3d.HEIGHT_COLUMN].to_numpy())
    reach = score_helsinki3d.scene_reach_m(kalasatama, 25.0)
    assert reach == pytest.approx(25.0 + 118.1 / math.tan(math.radians(25.0)), abs=1.0)


@pytest.mark.shared_data
def test_spacenet_conversion(pan_chip: score_spacenet_atlanta.PanChip) -> None:
    assert pan_chip.dn.shape == (900, 900) and pan_chip.gsd_m == pytest.approx(0.5)
    assert pan_chip.crs.to_epsg() == 32616
    means = [0.0786593, 0.0900191, 0.0922934, 0.1558293]
    inp = score_spacenet_atlanta.pan_to_model_input(pan_chip, means, ["blue", "green", "red", "nir"], 0.3)
    assert inp.image.shape == (4, 1500, 1500) and inp.image.dtype == np.float32
    assert inp.gsd_m == 0.3 and inp.transform.a == pytest.approx(0.3) and inp.transform.e == pytest.approx(-0.3)
    assert (inp.transform.c, inp.transform.f) == (pan_chip.transform.c, pan_chip.transform.f)
    np.testing.assert_allclose(inp.image[:, inp.valid].mean(axis=1), means, rtol=0.01)
    # one spatial pattern in every band: the bands are proportional (below the reflectance ceiling)
    unclipped = inp.image[3] < 1.5
    assert unclipped.mean() > 0.999
    np.testing.assert_allclose(inp.image[3][unclipped] * means[0], inp.image[0][unclipped] * means[3],
                               rtol=1e-4, atol=1e-6)
    # grey: the training's panchromatic draw, one image in every band at the pan-weighted mean
    grey = score_spacenet_atlanta.pan_to_model_input(pan_chip, means, ["blue", "green", "red", "nir"], 0.3, mode="grey")
    np.testing.assert_array_equal(grey.image[0], grey.image[3])
    assert grey.image[0][grey.valid].mean() == pytest.approx(float(np.dot([0.2, 0.3, 0.3, 0.2], means)), rel=0.01)
    with pytest.raises(ValueError, match="pan input"):
        score_spacenet_atlanta.pan_to_model_input(pan_chip, means, ["blue", "green", "red", "nir"], 0.3, mode="rgb")


@pytest.mark.shared_data
def test_spacenet_scoring_runs_fast(pan_chip: score_spacenet_atlanta.PanChip) -> None:
    start = time.perf_counter()
    out = score_spacenet_atlanta.score_chip(DATA, iou=0.5)
    assert time.perf_counter() - start < 60
    m = out["metrics"]
    assert m["building_truth_count"] == 43
    assert m["building_tp"] + m["building_fn"] == 43
    assert m["building_tp"] + m["building_fp"] == m["building_pred_count"]
    assert out["pred"].crs.to_epsg() == 32616
    assert 0.0 <= (m["building_f1"] or 0.0) <= 1.0


@pytest.mark.shared_data
def test_spacenet_finetune_scores_every_label_once_with_a_model_that_never_saw_it(
        pan_chip: score_spacenet_atlanta.PanChip, tmp_path: Path) -> None:
    """Two iterations a fold: the path runs end to end; the figure itself comes from the script."""
    result = score_spacenet_atlanta.finetune_and_score(DATA, tmp_path, minutes=0.0, iterations=2, lr=1e-3, seed=0,
                                                       buffer_m=10.0, progress=False)
    folds = result["folds"]
    assert [(f["train"], f["test"]) for f in folds] == [("west", "east"), ("east", "west")]
    assert sum(f["test_labels"] for f in folds) == 43  # each label is tested once
    assert all(f["train_labels"] == g["test_labels"] for f, g in zip(folds, folds[::-1], strict=True))
    for f in folds:
        assert f["iterations"] == 2
        for model in ("shipped", "finetuned"):
            assert f[model]["tp"] + f[model]["fn"] == f["test_labels"]
        card = json.loads((Path(f["weights"]) / "card.json").read_text())
        assert card["training"]["started_from"]["model"] == "buildings-unet"
        assert card["training"]["data"][0]["buildings"] == f["train_labels"]
    assert result["pooled"]["shipped"]["tp"] + result["pooled"]["shipped"]["fn"] == 43


@pytest.mark.parametrize("spec", ["kalasatama-s3002-e40-a200", "tampere:1:40:200", "viikki:x:40:200",
                                  "viikki:1:95:200", "viikki:1:40"])
def test_a_bad_helsinki_scene_spec_is_refused_with_the_expected_form(spec: str) -> None:
    """A scene name or a mistyped spec gets argparse's error naming the form, not an IndexError."""
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="AREA:SEED:ELEVATION:AZIMUTH|elevation|SEED"):
        score_helsinki3d.scene_spec(spec)
    assert score_helsinki3d.scene_spec("viikki:3005:40:200") == "viikki:3005:40:200"
