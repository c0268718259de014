"""A city with only Sentinel-2: the run gives area estimates per cell and the moving trucks, no counts.

A render of central Helsinki (seed 2026, VHR at 1 m to keep it quick: the
10 m image does not depend on it) keeps only its Sentinel-2 files, so the
local source finds no very-high-resolution scene. The run must end well,
publish coverage, mean height and built volume for the city and its H3 cells
labelled as Sentinel-2 area estimates, publish no building or vehicle count,
and write ``trucks_s2.parquet``. The city's built-up coverage is checked
against the render's own footprints: measured 0.283 against a truth of
0.308 on this render, and the bar is 0.08. The model learnt on the western
part of this same extract (other seeds), so this checks the wiring and a
gross error, not the model's accuracy: ``scripts/score_s2_builtup.py`` does
that on a held-out block.
"""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pytest
import shapely

from tests.e2e.conftest import baseline_cli, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s2_only_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("s2only")
    rendered = root / "rendered"
    done = baseline_cli("synth", "--city", "helsinki", "--out", str(rendered), "--seed", "2026", "--gsd", "1.0")
    assert done.returncode == 0, done.stderr
    scene = root / "scene"
    scene.mkdir()
    for name in ("s2.tif", "s2.json"):
        shutil.copy(rendered / name, scene / name)
    config = write_config(root / "c.yaml")
    done = baseline_cli("run", str(config), "--scene", str(scene), "--out", str(root / "run"))
    return {"done": done, "run": root / "run", "truth": rendered / "truth", "config": config, "scene": scene}


def test_run_ends_well_and_says_what_it_gave(s2_only_run):
    done = s2_only_run["done"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Sentinel-2 only" in done.stderr and "area estimates" in done.stderr
    for name in ("indicators_city.parquet", "indicators_h3.parquet", "trucks_s2.parquet", "manifest.json",
                 "report.html"):
        assert (s2_only_run["run"] / name).is_file(), name
    report = (s2_only_run["run"] / "report.html").read_text()
    assert "Cars are not measurable from this imagery" in report  # not "no vehicles were detected"
    assert "On-road share per cell is not measurable" in report
    assert "Built-up coverage per hexagonal cell" in report


def test_area_figures_published_counts_withheld(s2_only_run):
    run = s2_only_run["run"]
    city = gpd.read_parquet(run / "indicators_city.parquet")
    cells = gpd.read_parquet(run / "indicators_h3.parquet")
    for frame in (city, cells):
        assert (frame["sensor"] == "sentinel-2-l2a").all()
        assert frame["building_count"].isna().all() and frame["vehicles_total"].isna().all()
        assert frame["notes"].str.contains("area estimates from Sentinel-2").all()
    shown = cells[~cells["figures_withheld"]]
    assert len(shown) >= 10
    assert shown["coverage_ratio"].between(0, 1).all() and shown["built_volume_m3"].ge(0).all()
    assert np.allclose(shown["footprint_area_m2"], shown["coverage_ratio"] * shown["zone_area_m2"])
    truth = gpd.read_parquet(s2_only_run["truth"] / "buildings.parquet").to_crs(city.crs)
    zone = city.geometry.iloc[0]
    true_cover = float(shapely.area(shapely.intersection(truth.geometry.values, zone)).sum() / zone.area)
    assert abs(city["coverage_ratio"].iloc[0] - true_cover) <= 0.08, (city["coverage_ratio"].iloc[0], true_cover)
    assert 8.0 <= city["height_mean_m"].iloc[0] <= 30.0
    manifest = json.loads((run / "manifest.json").read_text())
    assert {m["name"] for m in manifest["models"]} == {"s2-builtup", "s2-trucks"}


def test_rerun_is_up_to_date(s2_only_run):
    done = baseline_cli("run", str(s2_only_run["config"]), "--scene", str(s2_only_run["scene"]), "--out",
                        str(s2_only_run["run"]), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stderr
