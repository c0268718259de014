"""The published tables open as they are in other readers: the gpio spec validator, geopandas, DuckDB spatial."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from baseline.publish import publish_tables

TABLES = ("buildings", "vehicles", "indicators_city", "indicators_h3")


def _spatial_extension() -> Path | None:
    """The DuckDB spatial extension that the ``duckdb-ext-spatial`` wheel ships (no network needed)."""
    try:
        import duckdb
    except ImportError:
        return None
    platform = duckdb.connect().execute("PRAGMA platform").fetchone()[0]
    for entry in map(Path, sys.path):
        candidate = entry / "duckdb_ext" / "extensions" / f"v{duckdb.__version__}" / platform / "spatial.duckdb_extension"
        if candidate.is_file():
            return candidate
    return None


SPATIAL = _spatial_extension()
GPIO = shutil.which("gpio") or str(Path(sys.executable).with_name("gpio"))


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, Path]:
    from tests.conftest import make_publish_sample

    sample = make_publish_sample()
    districts = sample.indicators_h3.head(4).rename(columns={"zone_id": "district"}).drop(columns="h3_cell")
    return publish_tables(tmp_path_factory.mktemp("run"), sample.buildings, sample.vehicles,
                          sample.indicators_city, sample.indicators_h3, districts, run_id="readers")


@pytest.fixture(scope="module")
def gpio_reports(published, tmp_path_factory) -> dict[str, tuple[int, dict]]:
    """``gpio check spec --json`` on every table, run side by side.

    gpio loads DuckDB's spatial extension by name from ``$HOME/.duckdb``; a private
    HOME holding a link to the shipped extension keeps the check offline and leaves
    the real home alone.
    """
    if not Path(GPIO).exists():
        pytest.skip("geoparquet-io's gpio CLI is not installed")
    if SPATIAL is None:
        pytest.skip("the duckdb-ext-spatial wheel is not installed")
    import duckdb

    home = tmp_path_factory.mktemp("home")
    ext_dir = home / ".duckdb" / "extensions" / f"v{duckdb.__version__}" / SPATIAL.parent.name
    ext_dir.mkdir(parents=True)
    (ext_dir / SPATIAL.name).symlink_to(SPATIAL)
    env = {**os.environ, "HOME": str(home)}
    runs = {name: subprocess.Popen([GPIO, "check", "spec", str(path), "--json", "--sample-size", "0"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
            for name, path in published.items()}
    reports = {}
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert out.strip(), f"gpio printed nothing for {name}: {err[-500:]}"
        reports[name] = (proc.returncode, json.loads(out[out.index("{"):]))
    return reports


@pytest.mark.parametrize("name", [*TABLES, "indicators_district"])
def test_gpio_spec_check_passes(gpio_reports, name):
    returncode, report = gpio_reports[name]
    failed = [c for c in report["checks"] if c["status"] == "failed"]
    assert failed == [], failed
    assert report["summary"]["failed"] == 0
    assert report["is_valid"] is True
    assert returncode == 0, [c for c in report["checks"] if c["status"] != "passed"]
    assert report["detected_version"] == "1.1.0"
    names = {c["name"] for c in report["checks"] if c["status"] == "passed"}
    assert len(names) >= 20  # the 1.1 covering checks ran too


@pytest.mark.parametrize("name", TABLES)
def test_geopandas_reads_the_crs(published, name):
    frame = gpd.read_parquet(published[name])
    assert frame.crs is not None and frame.crs.to_epsg() == 32635
    assert frame.geometry.is_valid.all()


@pytest.fixture(scope="module")
def duckdb_spatial():
    if SPATIAL is None:
        pytest.skip("the duckdb-ext-spatial wheel is not installed")
    import duckdb

    con = duckdb.connect()
    con.execute(f"LOAD '{SPATIAL}'")
    yield con
    con.close()


@pytest.mark.parametrize("name", TABLES)
def test_duckdb_spatial_reads_geometry_and_areas_match_shapely(published, duckdb_spatial, name):
    path = str(published[name])
    types = dict(duckdb_spatial.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))",
                                        [path]).fetchall())
    assert types["geometry"] == "GEOMETRY"
    assert types["bbox"].startswith("STRUCT(xmin DOUBLE")
    areas = np.array([a for (a,) in duckdb_spatial.execute(
        "SELECT ST_Area(geometry) FROM read_parquet(?)", [path]).fetchall()])
    expected = gpd.read_parquet(published[name]).area.to_numpy()
    assert len(areas) == len(expected) > 0
    np.testing.assert_allclose(areas, expected, rtol=1e-9)


def test_duckdb_bbox_filter_uses_the_covering(published, duckdb_spatial):
    """A bbox filter on the covering column selects the same rows as an exact intersects."""
    path = str(published["buildings"])
    window = (385700.0, 6671700.0, 386100.0, 6672200.0)
    by_bbox = duckdb_spatial.execute(
        "SELECT building_id FROM read_parquet(?) WHERE bbox.xmax >= ? AND bbox.xmin <= ? "
        "AND bbox.ymax >= ? AND bbox.ymin <= ? ORDER BY building_id",
        [path, window[0], window[2], window[1], window[3]]).fetchall()
    exact = duckdb_spatial.execute(
        "SELECT building_id FROM read_parquet(?) WHERE ST_Intersects(geometry, ST_MakeEnvelope(?, ?, ?, ?)) "
        "ORDER BY building_id", [path, *window]).fetchall()
    assert by_bbox == exact and len(exact) > 0
