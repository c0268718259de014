"""``baseline run`` against remote sources: clear failures, exit statuses, nothing left behind."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baseline.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_a_real_remote_endpoint_fails_here_within_its_timeout_and_leaves_nothing(tmp_path):
    """No network in CI: the Earth Search config must end in a network error, exit 4, no files."""
    config = {
        "schema_version": 1, "name": "remote", "city": "helsinki", "catalog": str(REPO / "data_catalog"),
        "scene": {
            "source": "stac", "path": str(tmp_path / "staged"),
            "aoi": [24.93, 60.165, 24.95, 60.175],
            "stac": {"endpoint": "https://earth-search.aws.element84.com/v1", "collections": ["sentinel-2-l2a"]},
            "selection": {"start": "2024-06-01", "end": "2024-06-30"},
            "http": {"timeout_s": 3, "max_retries": 1, "backoff_s": 0.2, "deadline_s": 20},
        },
        "publish": {"out": str(tmp_path / "out")},
    }
    path = tmp_path / "remote.yaml"
    path.write_text(yaml.safe_dump(config))
    t0 = time.monotonic()
    result = run_cli("run", str(path), timeout=90)
    elapsed = time.monotonic() - t0
    assert result.returncode == 4, result.stderr
    assert elapsed < 60
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: STAC API https://earth-search.aws.element84.com/v1")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    assert not any((tmp_path / "staged").glob("*")) if (tmp_path / "staged").exists() else True


def test_every_example_config_for_a_real_city_fails_cleanly_offline(tmp_path):
    """The shipped real-city configs validate and fail with a typed error (network or missing input), exit != 0."""
    for name in ("beijing-2nd-ring-s2.yaml", "paris-planetary-computer.yaml"):
        raw = yaml.safe_load((REPO / "configs" / name).read_text())
        raw["catalog"] = str(REPO / "data_catalog")
        work = tmp_path / Path(name).stem
        raw["scene"]["path"] = str(work / "staged")
        raw["scene"]["http"] = {"timeout_s": 2, "max_retries": 0, "deadline_s": 15}
        raw["publish"]["out"] = str(work / "out")
        path = tmp_path / name
        path.write_text(yaml.safe_dump(raw))
        result = run_cli("run", str(path), timeout=90)
        assert result.returncode in (3, 4), (name, result.stderr)
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")
        assert "Traceback" not in result.stderr
        assert not (work / "out").exists()
        assert not any((work / "staged").glob("*.tif")) if (work / "staged").exists() else True
