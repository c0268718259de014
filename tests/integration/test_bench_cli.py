"""`baseline bench` end to end on a small rendered base: every figure measured, consistent, written as JSON."""

from __future__ import annotations

import json
import math

import pytest

from tests.e2e.conftest import baseline_cli
from tests.factories import render_crop

pytestmark = pytest.mark.slow

KEYS = ("end_to_end_km2_s", "model_only_km2_s", "ratio_model", "naive_km2_s", "vs_naive", "peak_rss_mb",
        "memory_growth")


@pytest.fixture(scope="module")
def base_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "base"
    return render_crop(folder, (385700.0, 6672000.0, 385900.0, 6672200.0))


def test_bench_measures_every_figure_in_one_run(base_scene, tmp_path):
    out = tmp_path / "bench.json"
    done = baseline_cli("bench", "--area-km2", "0.02", "--base-scene", str(base_scene), "--json", str(out),
                        "--model-seconds", "0.5", "--work", str(tmp_path / "work"), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ratio_model" in done.stdout and "memory_growth" in done.stdout
    figures = json.loads(out.read_text())
    for key in KEYS:
        assert isinstance(figures[key], float) and math.isfinite(figures[key]) and figures[key] > 0, key
    assert figures["ratio_model"] == pytest.approx(figures["end_to_end_km2_s"] / figures["model_only_km2_s"])
    assert figures["vs_naive"] == pytest.approx(figures["end_to_end_km2_s"] / figures["naive_km2_s"])
    assert figures["memory_growth"] == pytest.approx(figures["peak_rss_4x_mb"] / figures["peak_rss_mb"])
    assert figures["area_km2"] == pytest.approx(0.02, rel=0.01)
    assert figures["end_to_end_4x"]["area_km2"] == pytest.approx(0.08, rel=0.01)
    # the 4x run really processed more tiles of the city, and both runs published
    assert figures["end_to_end_4x"]["tiles"] >= figures["end_to_end"]["tiles"]
    assert (tmp_path / "work" / "run-4x" / "manifest.json").is_file()
    assert set(figures["model_only_per_model_km2_s"]) == {"buildings-unet", "vehicles-centernet"}


def test_bench_refuses_a_bad_area(tmp_path):
    done = baseline_cli("bench", "--area-km2", "-1", "--work", str(tmp_path / "w"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--area-km2" in done.stderr


def test_bench_on_cuda_without_a_gpu_says_so_at_once(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = baseline_cli("bench", "--device", "cuda", "--work", str(tmp_path / "w"), timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "no CUDA device" in done.stderr
    assert not (tmp_path / "w").exists()
