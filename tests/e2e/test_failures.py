"""Failures at scale: a worker killed mid-run loses and doubles nothing; a tile that keeps failing fails alone.

Real Dask cluster (two process workers), real render, shipped models. The
scene is a 600 m x 300 m crop cut into eight 154 m tiles.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import rasterio

from baseline.config import load_config
from baseline.core.hashing import sha256_file
from baseline.errors import TileFailuresError
from baseline.run.pipeline import run_pipeline
from tests.e2e.conftest import REPO, write_config
from tests.factories import render_crop

pytestmark = pytest.mark.slow

TABLES = ("buildings.parquet", "vehicles.parquet", "indicators_city.parquet", "indicators_h3.parquet")
TILE_PX = 512


@pytest.fixture(scope="module")
def wide_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene") / "wide"
    return render_crop(folder, (385700.0, 6672000.0, 386300.0, 6672300.0))


@pytest.fixture(scope="module")
def undisturbed(wide_scene, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("undisturbed")
    config = load_config(write_config(tmp / "c.yaml", preprocess={"tile_px": TILE_PX}))
    summary = run_pipeline(config, out=tmp / "run", scene_dir=wide_scene, show_progress=False)
    assert summary.tiles_total == 8 and not summary.tiles_failed
    return tmp / "run"


def test_killed_worker_loses_and_doubles_nothing(wide_scene, undisturbed, tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml", preprocess={"tile_px": TILE_PX}))
    killed: list[int] = []

    def kill_the_worker_of_the_first_tile(result):
        if killed:
            return
        pid = int(result.stats["worker"].rsplit(":", 1)[1])
        assert pid != os.getpid(), "tiles must run in worker processes"
        os.kill(pid, signal.SIGKILL)  # the worker is busy with its next tile, which must be redone
        killed.append(pid)

    summary = run_pipeline(config, out=tmp_path / "run", scene_dir=wide_scene, show_progress=False,
                           on_tile_done=kill_the_worker_of_the_first_tile)
    assert killed
    assert summary.tiles_total == 8 and not summary.tiles_failed
    done = sorted(p.parent.name for p in (tmp_path / "run" / ".work" / "tiles").glob("*/done.json"))
    assert len(done) == 8
    workers = {json.loads((tmp_path / "run" / ".work" / "tiles" / t / "done.json").read_text())["stats"]["worker"]
               for t in done}
    assert len(workers) >= 2, "the work was shared by more than one worker process"
    for name in TABLES:
        assert sha256_file(tmp_path / "run" / name) == sha256_file(undisturbed / name), name


def _corrupt_east_blocks(scene_dir):
    """Overwrite the compressed bytes of the scene's easternmost column of blocks, as a bad disk would."""
    tif = scene_dir / "vhr.tif"
    with rasterio.open(tif) as src:
        cols = -(-src.width // src.block_shapes[0][1])
        rows = -(-src.height // src.block_shapes[0][0])
        spans = []
        for r in range(rows):
            off = int(src.get_tag_item(f"BLOCK_OFFSET_{cols - 1}_{r}", "TIFF", bidx=1))
            size = int(src.get_tag_item(f"BLOCK_SIZE_{cols - 1}_{r}", "TIFF", bidx=1))
            spans.append((off, size))
    with open(tif, "r+b") as fh:
        for off, size in spans:
            fh.seek(off + 16)
            fh.write(b"\xff\x00" * ((size - 32) // 2))


@pytest.fixture(scope="module")
def damaged_scene(wide_scene, tmp_path_factory):
    folder = tmp_path_factory.mktemp("damaged") / "wide"
    subprocess.run(["cp", "-r", str(wide_scene), str(folder)], check=True)
    _corrupt_east_blocks(folder)
    return folder


def test_failing_tiles_stop_the_run_with_a_report_and_keep_the_rest(damaged_scene, tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml", preprocess={"tile_px": TILE_PX}))
    out = tmp_path / "run"
    with pytest.raises(TileFailuresError, match="tiles failed") as err:
        run_pipeline(config, out=out, scene_dir=damaged_scene, show_progress=False)
    assert "failed_tiles.json" in str(err.value)
    report = json.loads((out / ".work" / "failed_tiles.json").read_text())
    failed = {f["tile_id"] for f in report["failed"]}
    assert 0 < len(failed) < 8
    assert all("vhr.tif" in f["error"] and f["error_type"] == "InputFileError" for f in report["failed"])
    finished = {p.parent.name for p in (out / ".work" / "tiles").glob("*/done.json")}
    assert finished == {f"r{r:03d}c{c:03d}" for r in range(2) for c in range(4)} - failed
    assert not any((out / t).exists() for t in TABLES), "nothing is published above the allowed failures"


def test_failing_tiles_within_the_allowance_publish_as_no_coverage(damaged_scene, undisturbed, tmp_path):
    config_path = write_config(tmp_path / "c.yaml", preprocess={"tile_px": TILE_PX},
                               cluster={"max_failed_fraction": 0.75})
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "baseline.cli.main", "run", str(config_path), "--scene",
                           str(damaged_scene), "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 8, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "failed_tiles.json" in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    failed = manifest["extra"]["failed_tiles"]
    assert failed and all(f["error_type"] == "InputFileError" for f in failed)
    import geopandas as gpd
    import shapely

    city = gpd.read_parquet(out / "indicators_city.parquet").iloc[0]
    clean = gpd.read_parquet(undisturbed / "indicators_city.parquet").iloc[0]
    assert city["valid_fraction"] < clean["valid_fraction"] - 0.2
    buildings = gpd.read_parquet(out / "buildings.parquet")
    holes = shapely.union_all([shapely.box(*f["core"]) for f in failed])
    assert not buildings.centroid.within(holes).any(), "no building is reported from a failed tile"
    assert "count as area without coverage" in (out / "report.html").read_text()
