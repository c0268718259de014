"""``baseline train`` end to end on tiny procedural scenes: weights, card and metrics come out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baseline.cli.main import main
from baseline.detect.weights import load_model
from baseline.train.toyscene import render_toy_scene


@pytest.fixture(scope="module")
def toy_scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("toy")
    train = render_toy_scene(root / "train", seed=1, shape=(160, 160), sun_elevation_deg=35, sun_azimuth_deg=150)
    val = render_toy_scene(root / "val", seed=2, shape=(128, 128), sun_elevation_deg=50, sun_azimuth_deg=210)
    return train, val


def _train(kind: str, args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run ``baseline train KIND ...`` through the console entry point, in process; (exit code, out, err)."""
    argv = ["train", kind, *args, "--epochs", "1", "--iters-per-epoch", "2", "--batch-size", "2", "--no-progress"]
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("kind, extra", [("buildings", ["--sun-planes"]), ("vehicles", [])])
def test_train_writes_safetensors_card_and_metrics(kind: str, extra: list[str], toy_scenes, tmp_path: Path, capsys) -> None:
    train, val = toy_scenes
    out = tmp_path / "models" / f"{kind}-toy" / "0.0.1"
    args = ["--data", str(train), "--val", str(val), "--out", str(out), "--crop", "64", *extra]
    code, stdout, stderr = _train(kind, args, capsys)
    assert code == 0, stderr[-2000:]
    assert "wrote" in stdout
    assert (out / "model.safetensors").stat().st_size > 0
    assert not list(out.glob("*.pt"))
    card = json.loads((out / "card.json").read_text())
    assert card["name"] == f"{kind}-toy" and card["version"] == "0.0.1" and card["task"] == kind
    assert card["training"]["iterations"] == 2
    assert card["licence"] == "Apache-2.0"
    assert {"tp", "fp", "fn"} <= card["evaluation"].keys()
    assert (out / "MODEL_CARD.md").exists() and (out / "metrics.json").exists()
    model = load_model(f"{kind}-toy", models_dir=tmp_path / "models")
    assert model.task == kind
    # re-score (buildings: and re-tune) without touching the weights
    before = (out / "model.safetensors").read_bytes()
    code, _, stderr = _train(kind, ["--rescore", "--data", str(train), "--val", str(val), "--out", str(out)], capsys)
    assert code == 0, stderr[-2000:]
    assert (out / "model.safetensors").read_bytes() == before
    rescored = json.loads((out / "card.json").read_text())
    assert rescored["evaluation"]["tp"] == card["evaluation"]["tp"]
    assert json.loads((out / "metrics.json").read_text())["fit"] is not None
    if kind == "buildings":
        assert "postprocess_tuning" in rescored
        assert any("split at" in key for key in rescored["postprocess_tuning"]["scores"])
        assert isinstance(rescored["postprocess"]["learned_height_offsets_by_area"], list)
        # weights copied into a new version's folder and re-tuned: the card follows the folder
        copy = out.parent / "0.0.2"
        copy.mkdir()
        for f in out.iterdir():
            (copy / f.name).write_bytes(f.read_bytes())
        code, _, stderr = _train(kind, ["--rescore", "--data", str(train), "--out", str(copy)], capsys)
        assert code == 0, stderr[-2000:]
        copied = json.loads((copy / "card.json").read_text())
        assert copied["version"] == "0.0.2" and copied["weights_from"] == f"{kind}-toy 0.0.1"
        assert load_model(f"{kind}-toy", models_dir=tmp_path / "models").card["version"] == "0.0.2"
        # one setting changed by hand, then only re-scored: the post-processing stays as the card says
        code, _, stderr = _train(kind, ["--keep-postprocess", "--data", str(train), "--out", str(copy)], capsys)
        assert code != 0 and "--rescore" in stderr  # a new fit is always tuned
        edited = dict(copied, postprocess={**copied["postprocess"], "shade_neighbours": True, "min_seed_m2": 123.0})
        (copy / "card.json").write_text(json.dumps(edited))
        code, _, stderr = _train(kind, ["--rescore", "--keep-postprocess", "--data", str(train), "--val", str(val),
                                        "--out", str(copy)], capsys)
        assert code == 0, stderr[-2000:]
        kept = json.loads((copy / "card.json").read_text())
        assert kept["postprocess"] == edited["postprocess"] and kept["postprocess_kept"] is True
        assert kept["postprocess_tuning"] == copied["postprocess_tuning"] and "tp" in kept["evaluation"]
        assert "not re-tuned" in (copy / "MODEL_CARD.md").read_text()
        # fine-tuning: starts from 0.0.2's weights, keeps its architecture, normalisation and the
        # post-processing settings tuning does not derive; what tuning derives is measured again
        tuned = out.parent / "0.0.3"
        code, _, stderr = _train(kind, ["--init-from", str(copy), "--data", str(val), "--out", str(tuned),
                                        "--crop", "64", "--encoder", "resnet18", "--lr", "1e-4"], capsys)
        assert code == 0, stderr[-2000:]
        fine = json.loads((tuned / "card.json").read_text())
        assert fine["training"]["started_from"] == {"model": f"{kind}-toy", "version": "0.0.2",
                                                    "weights_sha256": card["weights_sha256"]}
        assert fine["postprocess"]["shade_neighbours"] is True and fine["postprocess"]["min_seed_m2"] != 123.0
        assert fine["tiling"] == kept["tiling"]
        assert fine["architecture"] == card["architecture"] and fine["input"] == card["input"]
        assert fine["training"]["settings"]["encoder"] == card["architecture"]["config"]["encoder"]
        assert fine["weights_sha256"] != card["weights_sha256"]
        settings = card["training"]["settings"]
        assert settings["augment"] == "sensor" and settings["sensor_augment"]["p_pan"] > 0
        assert card["input"]["sun_planes"] == ["shadow_drow_per_m", "shadow_dcol_per_m"]
        assert model.in_channels == 6 and card["architecture"]["config"]["in_channels"] == 6
    else:
        assert "per_class_context" in rescored["evaluation"]
    load_model(f"{kind}-toy", models_dir=tmp_path / "models")


def test_train_reports_a_folder_without_labels(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = _train("vehicles", ["--data", str(empty), "--out", str(tmp_path / "m" / "x" / "1")], capsys)
    assert code == 3
    assert "error:" in stderr and "vhr.tif" in stderr
    assert not (tmp_path / "m" / "x" / "1").exists()  # the version folder it made is gone again


def test_init_from_refuses_another_task_and_leaves_no_folder(tmp_path: Path, capsys) -> None:
    vehicles = Path(__file__).resolve().parents[2] / "models" / "vehicles-centernet" / "1.0.0"
    out = tmp_path / "m" / "buildings-unet" / "9.9.9"
    code, _, stderr = _train("buildings", ["--init-from", str(vehicles), "--data", str(tmp_path), "--out", str(out)], capsys)
    assert code != 0
    assert "a vehicles model; --init-from needs a buildings model" in stderr and "Traceback" not in stderr
    assert not out.exists()
