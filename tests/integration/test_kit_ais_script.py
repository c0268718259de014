"""``scripts/score_kit_ais.py``'s data path: KIT AIS frames -> labelled scenes -> scores.

The real-frame tests read ``../shared/data/kit_ais_munich_vehicles`` (labels
without a licence: read at run time only, never copied) and skip when it is
absent; they check label parsing, class mapping, the GSD estimate, resampling
and the shipped model's scoring on one frame, then a few seconds of fine-tuning
from it (the full fine-tune is too slow for a test); the frame -> training-example conversion is checked on a tiny synthetic
PNG and label file made here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from baseline.detect.weights import load_model
from baseline.train.data import load_labelled_scene
from baseline.train.vehicles import VehicleSampler, VehicleTrainSettings
from scripts import kit_ais

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
KIT = DATA / kit_ais.KIT_FOLDER
CARD_MEAN = [0.08, 0.09, 0.09, 0.15]


@pytest.fixture(scope="module")
def frames() -> list[kit_ais.KitFrame]:
    if not KIT.is_dir():
        pytest.skip(f"real sample {kit_ais.KIT_FOLDER} not present under {DATA}")
    return kit_ais.load_frames(DATA)


def _label_counts(txt: Path) -> dict[str, int]:
    """Cars, large vehicles and don't-care boxes counted straight from a YOLO file."""
    ids = [int(line.split()[0]) for line in txt.read_text().splitlines() if line.strip()]
    return {"car": ids.count(0), "large": sum(ids.count(i) for i in (1, 2, 3)), "ignore": ids.count(4)}


@pytest.mark.shared_data
def test_frames_labels_and_gsd(frames: list[kit_ais.KitFrame]) -> None:
    assert len(frames) == 9
    assert len({f.group for f in frames}) == 3  # three recordings of three overlapping frames
    gsd = kit_ais.estimate_group_gsd(frames)
    for est in gsd.values():
        assert 0.08 <= est.gsd_m <= 0.25
        assert est.cars >= 20
    for frame in frames:
        rf = kit_ais.resample_frame(frame, gsd[frame.group].gsd_m, CARD_MEAN)
        assert rf.counts == _label_counts(KIT / f"{frame.name}.txt")
        # the ground extent is kept: pixels x GSD before and after agree to within a pixel
        assert abs(rf.image.shape[2] * 0.3 - frame.width * gsd[frame.group].gsd_m) <= 0.3
        assert rf.image.shape[0] == 4 and np.isfinite(rf.image).all()
        # band means were matched to the card's (resampling keeps the mean; the ceiling clips a little)
        np.testing.assert_allclose(rf.image[:3].mean(axis=(1, 2)), CARD_MEAN[:3], rtol=0.02)
        np.testing.assert_allclose(rf.image[3], np.minimum(kit_ais.NIR_FROM_RED * rf.image[2], 1.5), rtol=1e-5)
        assert (rf.boxes[:, 0] >= 0).all() and (rf.boxes[:, 0] <= rf.image.shape[2]).all()
    total = {k: sum(_label_counts(KIT / f"{f.name}.txt")[k] for f in frames) for k in ("car", "large")}
    assert total == {"car": 339, "large": 8}


@pytest.mark.shared_data
def test_shipped_model_scores_one_frame(frames: list[kit_ais.KitFrame], tmp_path: Path) -> None:
    model = load_model("vehicles-centernet")
    frame = next(f for f in frames if f.name == "MunichStreet02-MOS74")
    gsd = kit_ais.estimate_group_gsd(frames)
    t0 = time.perf_counter()
    scenes = kit_ais.prepare_scenes([frame], tmp_path, model.mean, gsd)
    score = kit_ais.score_scene(model, scenes[frame.name])
    assert time.perf_counter() - t0 < 60.0
    car = score.rates["car"]
    assert car.tp + car.fn == _label_counts(KIT / f"{frame.name}.txt")["car"]
    assert car.as_dict()["recall"] > 0.2
    assert car.as_dict()["precision"] > 0.2
    # scoring folded the loaded network's batch norms for inference; a fine-tune must start from the weights
    tuned, record = kit_ais.finetune(model, [scenes[frame.name].scene], tmp_path / "ft" / "vehicles-kit" / "0.0.1",
                                     minutes=0.05, batch_size=2, crop_px=64)
    assert record.iterations >= 1
    _, exact = kit_ais.finetune(model, [scenes[frame.name].scene], tmp_path / "ft" / "vehicles-kit" / "0.0.2",
                                minutes=0.0, iterations=3, batch_size=2, crop_px=64)
    assert exact.iterations == 3  # a fixed length, whatever the machine's load
    assert any("running_mean" in k for k in tuned.network.state_dict())


def _synthetic_frame(folder: Path) -> Path:
    """A 200 x 100 PNG (sRGB grey road, one bright car, one dark bus) and its YOLO labels (car, bus, cyclist)."""
    rgb = np.full((100, 200, 3), (90, 100, 110), dtype=np.uint8)
    rgb[40:50, 30:60] = (240, 240, 240)  # car: 30 x 10 px centred at (45, 45)
    rgb[60:80, 100:180] = (20, 20, 20)  # bus: 80 x 20 px centred at (140, 70)
    png = folder / "MOS1.png"
    Image.fromarray(rgb).save(png)
    png.with_suffix(".txt").write_text(
        "0 0.225 0.45 0.15 0.10\n"
        "2 0.70 0.70 0.40 0.20\n"
        "4 0.90 0.20 0.02 0.04\n"
    )
    return png


def test_frame_to_training_example(tmp_path: Path) -> None:
    frame = kit_ais.load_frame(_synthetic_frame(tmp_path))
    assert frame.group == "MOS-200x100"
    assert list(frame.classes) == ["car", "large", None]
    # the one car box is axis-aligned, 30 px long: 4.5 m / 30 px
    assert kit_ais.estimate_gsd([frame]).gsd_m == pytest.approx(0.15)
    rf = kit_ais.resample_frame(frame, 0.15, CARD_MEAN)
    assert rf.image.shape == (4, 50, 100)
    assert rf.counts == {"car": 1, "large": 1, "ignore": 1}
    np.testing.assert_allclose(rf.boxes[0], [22.5, 22.5, 15.0, 5.0])
    np.testing.assert_allclose(rf.image[:3].mean(axis=(1, 2)), CARD_MEAN[:3], rtol=1e-3)

    folder = kit_ais.write_scene_folder(rf, tmp_path / "scene")
    scene = load_labelled_scene(folder)  # the project's own reader, as the trainer uses it
    assert scene.image.shape == (4, 50, 100) and scene.image.dtype == np.uint16
    assert scene.valid.all()
    assert scene.gsd_m == pytest.approx(0.3)
    np.testing.assert_allclose(scene.reflectance(), rf.image, atol=1.5e-4)
    v = scene.vehicles
    assert list(v["class"]) == ["car", "large"]  # the cyclist is don't-care: not a training example
    np.testing.assert_allclose(v["length_m"], [4.5, 12.0], rtol=1e-6)
    np.testing.assert_allclose(v["width_m"], [1.5, 3.0], rtol=1e-6)
    np.testing.assert_allclose(v["axis_deg"] % 180.0, [90.0, 90.0])  # east-west boxes
    x0, y0 = kit_ais.DUMMY_ORIGIN
    c = v.geometry.centroid
    np.testing.assert_allclose(c.x, [x0 + 22.5 * 0.3, x0 + 70 * 0.3])
    np.testing.assert_allclose(c.y, [y0 - 22.5 * 0.3, y0 - 35 * 0.3])
    assert not v["moving"].any()
    assert scene.band_time_offsets_s == {}

    # the trainer's sampler turns it into CenterNet targets with both vehicles on the heatmaps
    settings = VehicleTrainSettings(batch_size=2, crop_px=48, object_share=1.0)
    sampler = VehicleSampler([scene], settings, CARD_MEAN, [0.06, 0.06, 0.07, 0.12])
    x, target, weight = sampler(np.random.default_rng(0))
    assert x.shape == (2, 4, 48, 48) and target.shape == (2, 10, 24, 24)
    assert (target[:, :2] == 1.0).sum() >= 2

    # prepared scenes keep the don't-care box aside, in the scene's frame
    scenes = kit_ais.prepare_scenes([frame], tmp_path / "work", CARD_MEAN, {frame.group: kit_ais.GsdEstimate(0.15, 1, 30.0)})
    ks = scenes["MOS1"]
    assert len(ks.ignore) == 1 and len(ks.scene.vehicles) == 2
    np.testing.assert_allclose(ks.ignore.geometry.centroid.x, [x0 + 90 * 0.3])


def test_reflectance_band_order_and_scaling() -> None:
    """Bands come out blue, green, red, nir; sRGB is decoded before the means are matched."""
    rgb = np.array([[[200, 100, 50], [50, 100, 200]]], dtype=np.uint8)  # an orange and a blue pixel
    out = kit_ais.frame_reflectance(rgb, [0.1, 0.1, 0.1])
    assert out.shape == (4, 1, 2)
    assert out[0, 0, 0] < out[0, 0, 1]  # blue: dark in the orange pixel
    assert out[2, 0, 0] > out[2, 0, 1]  # red: bright in the orange pixel
    np.testing.assert_allclose(out[:3].mean(axis=(1, 2)), [0.1, 0.1, 0.1], rtol=1e-5)
    np.testing.assert_allclose(out[3], kit_ais.NIR_FROM_RED * out[2])
    # decoded sRGB: 200 is (200/50)**2.4-ish brighter than 50, not 4 times
    assert out[2, 0, 0] / out[2, 0, 1] > 10.0
    np.testing.assert_allclose(kit_ais.srgb_to_linear(np.array([0, 255])), [0.0, 1.0], atol=1e-6)


def test_yolo_labels_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match="class 7"):
        kit_ais.read_yolo_labels(bad)
    bad.write_text("0 0.5 0.5\n")
    with pytest.raises(ValueError, match="expected"):
        kit_ais.read_yolo_labels(bad)
    (tmp_path / "empty.txt").write_text("")
    assert kit_ais.read_yolo_labels(tmp_path / "empty.txt").shape == (0, 5)
