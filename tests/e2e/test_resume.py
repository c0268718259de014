"""A killed run leaves no partial table and resumes without recomputing finished tiles."""

from __future__ import annotations

import pytest

from baseline.config import load_config
from baseline.core.hashing import sha256_file
from baseline.run.pipeline import run_pipeline
from tests.e2e.conftest import write_config
from tests.factories import render_crop

pytestmark = pytest.mark.slow

TABLES = ("buildings.parquet", "vehicles.parquet", "indicators_city.parquet", "indicators_h3.parquet")


class Killed(Exception):
    """Stands in for the run being killed after its first tile."""


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene") / "crop"
    return render_crop(folder, (385700.0, 6672000.0, 386000.0, 6672300.0))


def test_killed_run_leaves_nothing_partial_and_resumes(small_scene, tmp_path):
    config = load_config(write_config(tmp_path / "c.yaml", preprocess={"tile_px": 512}))
    out = tmp_path / "run"

    def kill_after_first(_result):
        raise Killed

    with pytest.raises(Killed):
        run_pipeline(config, out=out, scene_dir=small_scene, show_progress=False, on_tile_done=kill_after_first)
    assert not any((out / t).exists() for t in TABLES), "a killed run publishes no table"
    assert not (out / "manifest.json").exists()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in (out / ".work" / "tiles").glob("*/done.json")}
    assert finished, "the first tile's work was kept"

    resumed = run_pipeline(config, out=out, scene_dir=small_scene, show_progress=False)
    assert resumed.tiles_total == 4
    assert resumed.tiles_reused == len(finished)
    for tile, mtime in finished.items():
        assert (out / ".work" / "tiles" / tile / "done.json").stat().st_mtime_ns == mtime, f"{tile} was redone"

    clean = run_pipeline(config, out=tmp_path / "clean", scene_dir=small_scene, show_progress=False)
    assert clean.tiles_reused == 0
    for name in TABLES:
        assert sha256_file(out / name) == sha256_file(tmp_path / "clean" / name), name
