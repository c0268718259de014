"""``baseline run CONFIG``: the whole pipeline for one config."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  baseline run configs/demo-helsinki.yaml
      the embedded demo: renders central Helsinki if needed, then every stage
  baseline run configs/demo-helsinki.yaml --scene /tmp/scene --out /tmp/run
      the same config on a scene `baseline synth` wrote, into another folder
  baseline evaluate runs/demo-helsinki --truth .cache/scenes/demo-helsinki/truth
      then score the run against the scene's exact truth

A rerun of the same config reuses finished tiles and stops at once when every
output is already current; an interrupted run resumes from its finished tiles.
A tile that fails after its retries is listed in <out>/.work/failed_tiles.json:
with cluster.max_failed_fraction > 0 the run still publishes (exit status 8,
those tiles count as no coverage), otherwise it stops with status 7.
"""


@click.command("run", epilog=EPILOG)
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Run folder (default: the config's publish.out).")
@click.option("--scene", "scene_dir", type=click.Path(path_type=Path), default=None,
              help="Scene folder to run on instead of the config's (vhr.tif + vhr.json ...).")
@click.option("--quiet", is_flag=True, help="No progress bars; only the summary.")
def command(config: Path, out: Path | None, scene_dir: Path | None, quiet: bool) -> None:
    """Run every stage for CONFIG: ingest, preprocess, detect, classify, aggregate, publish."""
    from rich.console import Console

    from baseline.config import load_config
    from baseline.run.pipeline import run_pipeline

    cfg = load_config(config)
    summary = run_pipeline(cfg, out=out, scene_dir=scene_dir, show_progress=not quiet)
    console = Console(stderr=True)
    if summary.skipped:
        console.print(f"[green]up to date[/green]: {summary.out}")
        return
    t = summary.timings_s
    seconds = sum(v for k, v in t.items() if k in ("ingest", "preprocess_detect", "classify", "aggregate", "trucks",
                                                    "publish"))
    if summary.area_estimates:
        what = ("Sentinel-2 only: built-up coverage, mean height and volume per cell as area estimates "
                "(no building or vehicle counts)")
    else:
        what = (f"{summary.buildings} buildings, {summary.vehicles} vehicles ({summary.vehicles_on_road} on the "
                f"road), {summary.tiles_total} tiles ({summary.tiles_reused} reused)")
    if summary.moving_trucks is not None:
        what += f"; {summary.moving_trucks} moving trucks in the Sentinel-2 scene"
    console.print(f"[bold green]done[/bold green] in {seconds:.0f} s: {what}")
    for name, path in summary.outputs.items():
        console.print(f"  {name:<28} {path}")
    if summary.tiles_failed:
        from baseline.errors import PARTIAL_EXIT_CODE

        console.print(
            f"[bold yellow]warning[/bold yellow]: {len(summary.tiles_failed)} tile(s) failed and count as no "
            f"coverage: {', '.join(summary.tiles_failed)}; see {summary.out / '.work' / 'failed_tiles.json'}. "
            "Rerun the same command to retry only those."
        )
        raise SystemExit(PARTIAL_EXIT_CODE)
