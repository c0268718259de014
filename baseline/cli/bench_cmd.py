"""``baseline bench``: throughput end to end, of the networks alone and of a naive loop; memory at 1x and 4x."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

EPILOG = """\b
Examples:
  baseline bench
      1 km² (and 4 km² for memory) made of copies of the demo render, on CPU
  baseline bench --area-km2 0.25 --json bench.json
      a quicker run; the figures as JSON too
  baseline bench --area-km2 6 --device cuda --batch-size 32 --workers 14
      on one GPU of a 16-core node: 14 workers share it (docs/performance.md)
  baseline bench --whole-window buildings,vehicles
      both networks over whole tile windows (the fastest; see README: Performance)

\b
The city is the embedded demo's render (rendered first when missing), laid
out in copies to the requested area. Measured in one run: end to end
(`baseline run`, start-up included, peak memory of all its processes), the
same networks alone on random tensors on the same device, precision, batch
and workers, and a naive loop computing the same detections chip by chip
(rasterio window read per chip, fp32, batch 1, one process). The 4x run also
gives the marginal rate (extra area over extra time: start-up paid once).
Ratios are only comparable between runs on the same machine.
"""


@click.command("bench", epilog=EPILOG)
@click.option("--area-km2", type=float, default=1.0, show_default=True, help="City area for the throughput figures.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help="Also write the figures here.")
@click.option("--workers", type=int, default=None, help="Dask workers (default: the demo config's).")
@click.option("--threads-per-worker", type=int, default=None, help="Threads per worker (default: the demo config's).")
@click.option("--batch-size", type=int, default=None, help="Chips per batch (default: the demo config's).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default=None,
              help="Network precision (default: the demo config's, auto).")
@click.option("--whole-window", default=None, metavar="LIST",
              help="Detectors that see whole tile windows, comma-separated: buildings,vehicles, or none "
                   "(default: the config's preprocess.whole_window).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Run config to bench with (default: configs/demo-helsinki.yaml).")
@click.option("--base-scene", type=click.Path(path_type=Path), default=None,
              help="Rendered scene folder to tile (default: the config's scene, rendered if missing).")
@click.option("--work", type=click.Path(path_type=Path), default=None,
              help="Folder for the bench cities and runs (default: a temporary folder, removed after).")
@click.option("--no-4x", "no_4x", is_flag=True, help="Skip the 4x run (no memory_growth).")
@click.option("--quiet", is_flag=True, help="No stage lines or tile bars from the runs; only the table.")
@click.option("--model-seconds", type=float, default=5.0, show_default=True,
              help="How long each network runs alone, per worker, for model_only_km2_s.")
def command(area_km2: float, device: str, json_path: Path | None, workers: int | None,
            threads_per_worker: int | None, batch_size: int | None, precision: str | None,
            whole_window: str | None, config_path: Path | None, base_scene: Path | None, work: Path | None,
            no_4x: bool, model_seconds: float, quiet: bool) -> None:
    """Benchmark the pipeline on a rendered city of --area-km2 against the model's own ceiling."""
    from rich.console import Console

    from baseline.bench import run_bench
    from baseline.bench.report import bench_table, write_bench_json
    from baseline.config import load_config
    from baseline.detect.weights import default_models_dir
    from baseline.errors import InvalidValueError
    from baseline.run.pipeline import REPO_ROOT, _ensure_scene
    from baseline.run.progress import StageProgress

    if area_km2 <= 0:
        raise InvalidValueError("--area-km2", area_km2, "a positive area in km²")
    from baseline.detect.runtime import resolve_device

    resolve_device(device)  # --device cuda without a GPU: say so before rendering or building anything
    config = load_config(config_path or REPO_ROOT / "configs" / "demo-helsinki.yaml")
    cluster = config.cluster.model_copy(update={k: v for k, v in (
        ("n_workers", workers), ("threads_per_worker", threads_per_worker)) if v is not None})
    detect = config.detect.model_copy(update={k: v for k, v in (
        ("device", device), ("batch_size", batch_size), ("precision", precision)) if v is not None})
    preprocess = config.preprocess
    if whole_window is not None:
        names = [n.strip() for n in whole_window.split(",") if n.strip() and n.strip() != "none"]
        if not set(names) <= {"buildings", "vehicles"}:
            raise InvalidValueError("--whole-window", whole_window, "buildings, vehicles, both comma-separated, or none")
        preprocess = preprocess.model_copy(update={"whole_window": names})
    config = config.model_copy(update={"cluster": cluster, "detect": detect, "preprocess": preprocess})
    console = Console(stderr=True)
    if base_scene is None:
        base_scene = config.scene.path
        _ensure_scene(config, base_scene, False, StageProgress(enabled=True))

    def run(folder: Path) -> dict:
        result = run_bench(config, base_scene, area_km2, folder, default_models_dir(), with_4x=not no_4x,
                           model_seconds=model_seconds, show_progress=not quiet,
                           progress=lambda text: console.print(f"[cyan]bench[/cyan] {text}"))
        return result.summary()

    if work is None:
        with tempfile.TemporaryDirectory(prefix="citybaseline-bench-") as tmp:
            summary = run(Path(tmp))
    else:
        work.mkdir(parents=True, exist_ok=True)
        summary = run(work)
    Console().print(bench_table(summary))
    if json_path is not None:
        write_bench_json(summary, json_path)
        console.print(f"figures written to {json_path}")
