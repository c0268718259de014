"""The install: pinned versions, the console script, and the README's commands kept in step with CI."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, ver = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = ver.strip()
    return pins


def test_key_pins_are_the_ones_the_project_needs():
    pins = _pins()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for name in ("rasterio", "geopandas", "shapely", "pyproj", "xarray", "dask", "distributed",
                 "segmentation-models-pytorch", "sentinelhub", "pyrosm", "pyarrow"):
        assert name in pins, f"{name} is not pinned in constraints.txt"


def test_every_dependency_is_installed_at_its_pin():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = _pins()
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            pytest.fail(f"{req.name} is a dependency but not installed: run scripts/bootstrap.sh")
        assert installed == pins[name], f"{req.name} {installed} differs from its pin {pins[name]}"
        assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} violates {req.specifier}"


def test_console_script_runs():
    script = Path(sys.executable).parent / "baseline"
    assert script.is_file(), "the console script 'baseline' is missing: pip install -e ."
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in ("synth", "run", "evaluate", "train"):
        assert re.search(rf"^\s+{command}\s", done.stdout, re.M), command
    assert version("citybaseline") == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^(scripts/bootstrap\.sh.*)$", readme, re.M)
    assert len(commands) >= 2, "the README's two commands are missing"
    install_and_run, install_and_test = commands[0], commands[1]
    assert "baseline run configs/demo-helsinki.yaml" in install_and_run
    assert install_and_test in (REPO / ".ci" / "run").read_text()
