"""A run with a surface model: buildings take the median height above ground inside their footprints.

The nDSM here is drawn from the demo scene's own truth (1 m, buildings at their
true heights on zero ground), so the test checks the plumbing: config to stage
to table, every building's ``height_source`` and the scores. It is not an
accuracy figure for real surface models (``tests/unit/test_surface_heights.py``
scores the real Old Town Alexandria lidar where ``../shared`` is present).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.features import rasterize
from rasterio.transform import from_origin

from baseline.core.geoparquet import read_geoparquet
from tests.e2e.conftest import baseline_cli, evaluate_json, write_config


def _truth_ndsm(truth_dir, path):
    truth = read_geoparquet(truth_dir / "buildings.parquet")
    (x0, y0), (x1, y1) = np.floor(truth.total_bounds[:2]) - 20, np.ceil(truth.total_bounds[2:]) + 20
    transform = from_origin(x0, y1, 1.0, 1.0)
    order = np.argsort(truth["height_m"].to_numpy())  # the taller part wins where footprints touch
    heights = rasterize(((truth.geometry.iloc[i], float(truth["height_m"].iloc[i])) for i in order),
                        out_shape=(int(y1 - y0), int(x1 - x0)), transform=transform, fill=0.0, dtype="float32")
    with rasterio.open(path, "w", driver="GTiff", width=heights.shape[1], height=heights.shape[0], count=1,
                       dtype="float32", crs=truth.crs, transform=transform, nodata=-9999.0) as dst:
        dst.write(heights, 1)
    return path


def test_a_surface_model_gives_every_building_its_height(demo_run, tmp_path):
    ndsm = _truth_ndsm(demo_run["truth"], tmp_path / "ndsm.tif")
    config = write_config(tmp_path / "dsm.yaml", scene={"path": str(demo_run["scene"])},
                          detect={"surface_model": str(ndsm)}, publish={"out": str(tmp_path / "run")})
    done = baseline_cli("run", str(config))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "building heights from the surface model" in done.stderr + done.stdout
    buildings = gpd.read_parquet(tmp_path / "run" / "buildings.parquet")
    assert (buildings["height_source"] == "dsm").mean() > 0.95
    scores = evaluate_json(tmp_path / "run", demo_run["truth"])
    plain = evaluate_json(demo_run["run"], demo_run["truth"])
    assert scores["building_f1"] == plain["building_f1"]  # footprints untouched
    assert scores["height_mae_m"] < 0.5 < plain["height_mae_m"]


def test_a_missing_surface_model_stops_the_run_before_any_work(demo_run, tmp_path):
    config = write_config(tmp_path / "dsm.yaml", scene={"path": str(demo_run["scene"])},
                          detect={"surface_model": str(tmp_path / "nowhere.tif")},
                          publish={"out": str(tmp_path / "run")})
    done = baseline_cli("run", str(config))
    assert done.returncode != 0
    assert "nowhere.tif" in done.stderr and "surface or ground model not found" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
