"""The main job, end to end, scored against the rendered scene's exact truth.

The end-to-end issue asks for building F1 >= 0.80, height MAE <= 2.5 m,
vehicle F1 >= 0.85 and on-road share error <= 0.05, on the demo and on a
scene with another seed and sun position; these tests assert exactly those.
The demo measured F1 0.820 and height MAE 2.27 m with buildings-unet 1.0.0
and its roof-shadow post-processing, so the F1 margin is thin: a change that
costs accuracy shows here first.
"""

from __future__ import annotations

import json

import geopandas as gpd
import pytest

from baseline.core.hashing import sha256_file
from baseline.core.schemas import BUILDINGS_OUT, VEHICLES_OUT
from tests.e2e.conftest import baseline_cli, evaluate_json, write_config

pytestmark = pytest.mark.slow

TABLES = ("buildings.parquet", "vehicles.parquet", "indicators_city.parquet", "indicators_h3.parquet")


def _assert_thresholds(metrics: dict) -> None:
    assert metrics["building_f1"] >= 0.80, metrics
    assert metrics["height_mae_m"] <= 2.5, metrics
    assert metrics["vehicle_f1"] >= 0.85, metrics
    assert metrics["on_road_share_error"] <= 0.05, metrics


def test_demo_outputs_exist_with_their_schemas(demo_run):
    run = demo_run["run"]
    for name in (*TABLES, "manifest.json", "report.html"):
        assert (run / name).is_file(), name
    buildings = gpd.read_parquet(run / "buildings.parquet")
    vehicles = gpd.read_parquet(run / "vehicles.parquet")
    assert set(BUILDINGS_OUT) <= set(buildings.columns)
    assert set(VEHICLES_OUT) <= set(vehicles.columns)
    assert buildings.crs.to_epsg() == 32635 and vehicles.crs.to_epsg() == 32635
    assert len(buildings) > 300 and len(vehicles) > 200
    assert not list(run.glob(".tmp-*")), "no temporary files are left behind"


def test_demo_accuracy_against_truth(demo_run):
    _assert_thresholds(evaluate_json(demo_run["run"], demo_run["truth"]))


def test_manifest_records_provenance(demo_run):
    manifest = json.loads((demo_run["run"] / "manifest.json").read_text())
    assert len(manifest["config_hash"]) == 64
    assert {m["name"] for m in manifest["models"]} == {"buildings-unet", "vehicles-centernet", "s2-trucks"}
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    for name, digest in manifest["outputs"].items():
        assert sha256_file(demo_run["run"] / name) == digest
    assert manifest["stage_timings_s"]["preprocess_detect"] > 0
    assert manifest["extra"]["failed_tiles"] == []
    (inference,) = manifest["extra"]["inference"]  # every worker ran the networks the same way
    assert inference.split()[0] in ("cpu", "cuda") and inference.split()[1] in ("fp32", "bf16", "fp16")


def test_sentinel2_trucks_lie_on_carriageways_and_are_reported_as_relative_traffic(demo_run):
    """The demo's Sentinel-2 scene gives ``trucks_s2.parquet``: moving trucks on the map's roads, in the map's
    CRS, each near a true moving truck or at least on a carriageway, and the report's note on relative traffic."""
    run = demo_run["run"]
    trucks = gpd.read_parquet(run / "trucks_s2.parquet")
    assert trucks.crs.to_epsg() == 32635
    assert len(trucks) >= 1
    roads = gpd.read_parquet(demo_run["truth"] / "roads.parquet").to_crs(trucks.crs)
    distance = trucks.geometry.apply(lambda p: roads.distance(p).min())
    assert (distance <= 15.0).all(), distance.describe()
    assert (trucks["speed_kmh"] > 0).all()
    notes = json.loads((run / "manifest.json").read_text())["extra"]["notes"]
    assert any("moving truck" in n and "not a count of vehicles" in n for n in notes), notes


def test_rerun_is_up_to_date_and_identical(demo_run):
    run = demo_run["run"]
    before = {name: sha256_file(run / name) for name in TABLES}
    done = baseline_cli("run", "configs/demo-helsinki.yaml", "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stderr
    assert {name: sha256_file(run / name) for name in TABLES} == before


def test_another_seed_and_sun_meets_the_same_thresholds(tmp_path):
    """A crop of a scene no model saw: seed 2025, sun high in the south-east."""
    scene = tmp_path / "scene"
    done = baseline_cli("synth", "--city", "helsinki", "--out", str(scene), "--seed", "2025",
                        "--sun-elevation", "52", "--sun-azimuth", "150", "--time", "2024-05-20T07:00:00Z",
                        "--bbox", "385500,6671800,386300,6672700")
    assert done.returncode == 0, done.stderr
    config = write_config(tmp_path / "c.yaml")
    done = baseline_cli("run", str(config), "--scene", str(scene), "--out", str(tmp_path / "run"), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_thresholds(evaluate_json(tmp_path / "run", scene / "truth"))
