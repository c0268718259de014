"""End-to-end fixtures: the demo run (real render, real Dask cluster, shipped models), once per session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "configs" / "demo-helsinki.yaml"


def baseline_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the real command line, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "baseline.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def evaluate_json(run_dir: Path, truth_dir: Path) -> dict:
    done = baseline_cli("evaluate", str(run_dir), "--truth", str(truth_dir), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def write_config(path: Path, **overrides: dict) -> Path:
    """The demo config with absolute paths and sections overridden."""
    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    raw["catalog"] = str(REPO / "data_catalog")
    for section, values in overrides.items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> dict[str, Path]:
    """`baseline run configs/demo-helsinki.yaml` into a fresh folder (rendering the scene if missing)."""
    out = tmp_path_factory.mktemp("demo") / "run"
    done = baseline_cli("run", str(DEMO_CONFIG), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    scene = yaml.safe_load(DEMO_CONFIG.read_text())["scene"]["path"]
    scene_dir = (DEMO_CONFIG.parent / scene).resolve()
    return {"run": out, "scene": scene_dir, "truth": scene_dir / "truth", "stderr": done.stderr}
