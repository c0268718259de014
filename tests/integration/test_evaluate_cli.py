"""``baseline evaluate`` as a user runs it: a subprocess, real files, JSON or a table, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from baseline.core.geoparquet import write_geoparquet

ROOT = Path(__file__).resolve().parents[2]
CRS = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0


def baseline_cmd() -> list[str]:
    """The installed console script beside this Python, else the module entry point."""
    script = Path(sys.executable).with_name("baseline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "baseline.cli.main"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*baseline_cmd(), *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def car(x: float, y: float = 0.0):
    return box(X0 + x - 2.2, Y0 + y - 0.9, X0 + x + 2.2, Y0 + y + 0.9)


def square(x: float, side: float = 10.0):
    return box(X0 + x, Y0, X0 + x + side, Y0 + side)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A run folder and a truth folder (GeoParquet), and GeoJSON copies for the file forms."""
    root = tmp_path_factory.mktemp("evaluate")
    truth_b = gpd.GeoDataFrame({"building_id": [1, 2, 3], "height_m": [10.0, 20.0, 30.0]},
                               geometry=[square(0), square(20), square(40)], crs=CRS)
    pred_b = gpd.GeoDataFrame({"building_id": [1, 2], "height_m": [12.0, 19.0], "score": 0.9},
                              geometry=[square(2.5), square(20)], crs=CRS)  # IoU 0.6 and 1
    truth_v = gpd.GeoDataFrame(
        {"vehicle_id": [1, 2, 3, 4], "class": ["car"] * 4, "on_road": [True, True, False, False],
         "moving": [True, False, False, False], "speed_kmh": [30.0, 0, 0, 0], "heading_deg": 90.0,
         "context": ["lane", "queue", "kerb", "car_park"]},
        geometry=[car(0), car(2), car(20), car(40)], crs=CRS)
    # optimal matching pairs 1.1 -> 0 and 3.2 -> 2; greedy nearest would pair 1.1 -> 2 and lose one
    pred_v = gpd.GeoDataFrame(
        {"vehicle_id": [1, 2, 3, 4], "class": ["car"] * 4, "on_road": [True, True, True, False],
         "moving": [True, False, False, False], "speed_kmh": [25.0, 0, 0, 0], "heading_deg": 90.0,
         "score": 0.8},
        geometry=[car(1.1), car(3.2), car(20), car(30)], crs=CRS)
    out = {"run": root / "run", "truth": root / "truth"}
    write_geoparquet(pred_b, out["run"] / "buildings.parquet")
    write_geoparquet(pred_v, out["run"] / "vehicles.parquet")
    write_geoparquet(truth_b, out["truth"] / "buildings.parquet")
    write_geoparquet(truth_v, out["truth"] / "vehicles.parquet")
    out["pred_b_json"] = root / "pred_b.geojson"
    pred_b.to_crs(4326).to_file(out["pred_b_json"], driver="GeoJSON")
    out["pred_v_json"] = root / "pred_v.geojson"
    pred_v.to_file(out["pred_v_json"], driver="GeoJSON")
    return out


def test_run_form_prints_one_json_object(files):
    done = cli("evaluate", files["run"], "--truth", files["truth"], "--json")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)  # exactly one object: anything else fails to parse
    assert isinstance(metrics, dict)
    assert (metrics["building_tp"], metrics["building_fp"], metrics["building_fn"]) == (2, 0, 1)
    assert metrics["building_recall"] == pytest.approx(2 / 3)
    assert metrics["height_mae_m"] == pytest.approx(1.5)
    assert metrics["building_count_error"] == pytest.approx(-1 / 3)
    assert (metrics["vehicle_tp"], metrics["vehicle_fp"], metrics["vehicle_fn"]) == (3, 1, 1)
    assert metrics["vehicle_count_error"] == 0.0
    assert metrics["on_road_accuracy"] == pytest.approx(2 / 3)
    assert metrics["on_road_share_error"] == pytest.approx(3 / 4 - 2 / 4)
    assert metrics["speed_mae_kmh"] == pytest.approx(5.0)
    assert metrics["vehicle_recall_car_park"] == 0.0 and metrics["vehicle_recall_kerb"] == 1.0


def test_stricter_iou_and_radius_options_are_used(files):
    done = cli("evaluate", files["run"], "--truth", files["truth"], "--json", "--iou", "0.7", "--radius", "1.0")
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert metrics["building_tp"] == 1 and metrics["iou"] == 0.7
    # within 1 m only 1.1 -> 2 (0.9 m) and 20 -> 20 remain
    assert metrics["vehicle_tp"] == 2 and metrics["radius_m"] == 1.0


def test_file_forms_read_geojson_and_geoparquet(files):
    done = cli("evaluate", "buildings", files["pred_b_json"], files["truth"] / "buildings.parquet", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["building_tp"] == 2
    done = cli("evaluate", "vehicles", files["pred_v_json"], files["truth"] / "vehicles.parquet",
               "--radius", "1.5")
    assert done.returncode == 0, done.stderr
    assert "vehicle_f1" in done.stdout and "0.7500" in done.stdout  # a readable table, F1 = 6/8


def test_missing_file_is_one_line_and_a_nonzero_exit(files):
    done = cli("evaluate", files["run"] / "nope", "--truth", files["truth"], "--json")
    assert done.returncode == 3
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "not found" in lines[0]
    assert "Traceback" not in done.stderr


def test_help_shows_the_three_forms_and_examples():
    done = cli("evaluate", "--help")
    assert done.returncode == 0
    for text in ("RUN_DIR --truth TRUTH_DIR", "buildings PRED TRUTH", "vehicles PRED TRUTH", "Examples:"):
        assert text in done.stdout
