"""The shipped models on a freshly rendered crop they never saw (slow: renders and runs both models)."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely

from baseline.detect.weights import list_versions, load_model

pytestmark = pytest.mark.slow

BBOX = (385850.0, 6671950.0, 386100.0, 6672200.0)  # 250 m of central Helsinki blocks and streets


@pytest.fixture(scope="module")
def fresh_scene(tmp_path_factory: pytest.TempPathFactory):
    synth = pytest.importorskip("baseline.synth")
    from baseline.train.data import load_labelled_scene

    folder = tmp_path_factory.mktemp("fresh") / "scene"
    result = synth.render_scene(
        synth.RenderParams(city="helsinki", seed=8, bbox=BBOX, sun_elevation_deg=47.0, sun_azimuth_deg=165.0,
                           sentinel2=False)
    )
    synth.write_scene(result, folder)
    return load_labelled_scene(folder)


def _shipped(name: str):
    if not list_versions(name):
        pytest.skip(f"no shipped model {name}")
    return load_model(name)


def _inner(frame, margin: float):
    area = shapely.box(*BBOX).buffer(-margin)
    return frame[shapely.within(frame.geometry.values, area)].reset_index(drop=True)


def test_shipped_building_model_finds_most_buildings(fresh_scene) -> None:
    from baseline.evaluate import match_buildings
    from baseline.train.evaluation import predict_buildings

    model = _shipped("buildings-unet")
    pred, _ = predict_buildings(model, fresh_scene, device="cpu")
    # the same rule for both sides: a building counts when its centroid lies 5 m inside the crop
    inner = shapely.box(*BBOX).buffer(-5.0)
    truth = fresh_scene.buildings
    truth = truth[shapely.contains_xy(inner, *shapely.get_coordinates(truth.geometry.centroid).T)].reset_index(drop=True)
    pred = pred[shapely.contains_xy(inner, *shapely.get_coordinates(pred.geometry.centroid).T)].reset_index(drop=True)
    assert len(truth) >= 5
    m = match_buildings(pred, truth, 0.5)
    assert m.tp / len(truth) >= 0.6, (m.tp, len(truth), len(pred))
    assert m.tp / max(len(pred), 1) >= 0.6
    heights = pred.iloc[m.pred]["height_m"].to_numpy() - truth.iloc[m.truth]["height_m"].to_numpy()
    assert abs(heights).mean() < 4.0


def test_shipped_vehicle_model_finds_most_vehicles(fresh_scene) -> None:
    from baseline.evaluate import match_vehicles
    from baseline.train.evaluation import predict_vehicles

    model = _shipped("vehicles-centernet")
    pred, _ = predict_vehicles(model, fresh_scene, device="cpu")
    truth = _inner(fresh_scene.vehicles, 3.0)
    pred = pred[shapely.contains_xy(shapely.box(*BBOX).buffer(-3.0), *shapely.get_coordinates(pred.geometry.centroid).T)]
    assert len(truth) >= 20
    m = match_vehicles(pred, truth, 1.5)
    assert m.tp / len(truth) >= 0.8, (m.tp, len(truth), len(pred))
    assert m.tp / max(len(pred), 1) >= 0.8


def test_models_folder_holds_only_safetensors_weights() -> None:
    root = Path(__file__).resolve().parents[2] / "models"
    if not root.is_dir():
        pytest.skip("no models folder")
    for path in root.rglob("*"):
        assert path.suffix.lower() not in {".pt", ".pth", ".bin", ".ckpt", ".pkl"}, path
        if path.name == "model.safetensors":
            assert path.stat().st_size < 20 * 1024 * 1024, path
