"""The model store: safetensors only, and a card must match its weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from baseline.detect.nets import build_network
from baseline.detect.weights import list_versions, load_model, read_model_ref, save_model
from baseline.errors import ModelError

ARCH = {"name": "vehicle-centernet", "config": {"widths": [4, 4, 8, 8]}}


def _card(name: str = "tiny", version: str = "1.0.0", arch: dict | None = None) -> dict:
    return {
        "name": name, "version": version, "task": "vehicles", "architecture": arch or ARCH,
        "input": {"bands": ["blue", "green", "red", "nir"], "gsd_m": 0.3, "mean": [0.1] * 4, "std": [0.1] * 4},
        "tiling": {"chip_px": 256, "overlap_px": 32, "halo_m": 8.0},
    }


def _save(root: Path, version: str = "1.0.0") -> Path:
    net = build_network(ARCH["name"], ARCH["config"])
    return save_model(net, _card(version=version), root / "tiny" / version)


def test_saved_model_loads_newest_version_and_matches(tmp_path: Path) -> None:
    _save(tmp_path, "1.0.0")
    folder = _save(tmp_path, "1.10.0")
    _save(tmp_path, "1.2.0")
    assert list_versions("tiny", tmp_path) == ["1.0.0", "1.2.0", "1.10.0"]
    model = load_model("tiny", models_dir=tmp_path)
    assert model.version == "1.10.0" and model.path == folder
    assert (folder / "MODEL_CARD.md").read_text().startswith("# tiny 1.10.0")
    out = model.network(torch.zeros(1, 4, 32, 32))
    assert out.shape == (1, 10, 16, 16)
    ref = read_model_ref(tmp_path, "tiny")
    assert (ref.gsd_m, ref.chip_px, ref.overlap_px, ref.halo_m) == (0.3, 256, 32, 8.0)


def test_refuses_a_pickled_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "tiny" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps(_card()))
    torch.save(build_network(ARCH["name"], ARCH["config"]).state_dict(), folder / "model.pt")
    with pytest.raises(ModelError, match="safetensors"):
        load_model("tiny", models_dir=tmp_path)


def test_refuses_a_pickle_named_safetensors(tmp_path: Path) -> None:
    folder = _save(tmp_path)
    torch.save(build_network(ARCH["name"], ARCH["config"]).state_dict(), folder / "model.safetensors")
    with pytest.raises(ModelError, match="not safetensors|not a readable safetensors"):
        load_model("tiny", models_dir=tmp_path)


def test_refuses_a_card_whose_architecture_differs(tmp_path: Path) -> None:
    folder = _save(tmp_path)
    card = json.loads((folder / "card.json").read_text())
    card["architecture"]["config"]["widths"] = [8, 8, 8, 8]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="architecture does not match"):
        load_model("tiny", models_dir=tmp_path)


def test_refuses_weights_that_do_not_fit_the_architecture(tmp_path: Path) -> None:
    # card and weights metadata agree, but the tensors are another network's
    other = {"name": "vehicle-centernet", "config": {"widths": [8, 8, 8, 8]}}
    folder = tmp_path / "tiny" / "1.0.0"
    save_model(build_network(ARCH["name"], ARCH["config"]), _card(arch=ARCH), folder)
    card = _card(arch=other)
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    save_file(tensors, folder / "model.safetensors", metadata={"architecture": json.dumps(other, sort_keys=True)})
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not fit"):
        load_model("tiny", models_dir=tmp_path)


def test_unknown_model_and_version_say_what_exists(tmp_path: Path) -> None:
    _save(tmp_path)
    with pytest.raises(ModelError, match="tiny"):
        load_model("nope", models_dir=tmp_path)
    with pytest.raises(ModelError, match="1.0.0"):
        load_model("tiny", "9.9", models_dir=tmp_path)


def test_refuses_sun_planes_it_does_not_know(tmp_path: Path) -> None:
    folder = _save(tmp_path)
    card = json.loads((folder / "card.json").read_text())
    card["input"]["sun_planes"] = ["sun_elevation"]
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="sun_planes") as caught:
        load_model("tiny", models_dir=tmp_path)
    assert "shadow_drow_per_m" in str(caught.value.hint)


def test_refuses_to_save_a_network_folded_for_inference(tmp_path: Path) -> None:
    from baseline.detect.runtime import fold_batchnorm

    folded = fold_batchnorm(build_network(ARCH["name"], ARCH["config"]))
    with pytest.raises(ModelError, match="folded"):
        save_model(folded, _card(), tmp_path / "tiny" / "1.0.0")
    assert not (tmp_path / "tiny" / "1.0.0" / "model.safetensors").exists()
