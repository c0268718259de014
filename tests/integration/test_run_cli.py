"""`baseline run` on bad input: one line naming the problem, a non-zero exit, nothing left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import write_config

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "baseline.cli.main", "run", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def _one_line_error(done: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_config(tmp_path):
    _one_line_error(_run(str(tmp_path / "nope.yaml")), 3, "nope.yaml", "config file not found")


def test_misspelt_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ncity: helsinki\nscene: {path: s}\ncluster: {n_wrokers: 2}\n")
    _one_line_error(_run(str(path)), 2, "cluster.n_wrokers")


def test_unknown_city_lists_the_known_ones(tmp_path):
    config = write_config(tmp_path / "c.yaml", city="atlantis")
    _one_line_error(_run(str(config), "--out", str(tmp_path / "out")), 2, "atlantis", "helsinki")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make", [False, True])
def test_scene_folder_without_imagery(tmp_path, make):
    scene = tmp_path / "scene"
    if make:
        scene.mkdir()
    config = write_config(tmp_path / "c.yaml")
    done = _run(str(config), "--scene", str(scene), "--out", str(tmp_path / "out"))
    _one_line_error(done, 3, str(scene), "baseline synth")
    assert not (tmp_path / "out").exists()


def test_help_has_examples():
    done = _run("--help")
    assert done.returncode == 0
    assert "Examples:" in done.stdout and "--scene" in done.stdout
