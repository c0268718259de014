"""``baseline evaluate``: score a run, or a pair of files, against ground truth.

Three forms share one command: ``baseline evaluate RUN_DIR --truth TRUTH_DIR``
(the usual one), ``baseline evaluate buildings PRED TRUTH`` and ``baseline
evaluate vehicles PRED TRUTH``. A group that falls back to the run form when the
first argument is not a subcommand keeps the short spelling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

EPILOG = """\b
Examples:
  baseline evaluate runs/demo-helsinki --truth .cache/scenes/demo-helsinki/truth
      score a run against the exact truth of the scene it was run on
  baseline evaluate runs/demo-helsinki --truth scene/truth --json > scores.json
      the same as one JSON object (null where a score is undefined)
  baseline evaluate buildings pred.geojson truth.gpkg --iou 0.5
      footprints matched one-to-one at IoU >= 0.5; any vector file GDAL reads
  baseline evaluate vehicles pred.parquet truth.parquet --radius 1.5
      vehicles matched one-to-one by centre distance within 1.5 m

\b
Matching is optimal one-to-one (most matches, then best total IoU or
distance). A folder literally named 'buildings' or 'vehicles' needs ./ before it.
Heights are scored overall, per band of true height (_under_10m, _10_30m,
_over_30m) and per height_source (_shadow, _learned, _dsm); with
height_sigma_m, the share of errors inside their 95% interval too.
Unmatched footprints are counted by kind: building_fn_missed, _merged,
_split, _outline; building_fp_merged, _phantom, _extra, _partial. Recall is
also given per footprint size (building_recall_under_30m2, _30_60m2,
_over_60m2): kiosks and sheds are what a model misses most.
"""

SUBCOMMANDS = ("buildings", "vehicles", "run")


class _RunDirGroup(click.Group):
    """A group whose first argument, when not a subcommand, is a run folder (the ``run`` form)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def _show(metrics: dict[str, Any], as_json: bool, title: str) -> None:
    """Print ``metrics`` as one JSON object, or as a readable table with notes below."""
    if as_json:
        click.echo(json.dumps(metrics, indent=2, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if key != "notes":
            table.add_row(key, _fmt(value))
    console = Console()
    console.print(table)
    for note in metrics.get("notes") or []:
        console.print(f"note: {note}")


_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
_iou_option = click.option(
    "--iou", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.5, show_default=True,
    help="IoU a footprint pair needs to match.",
)
_radius_option = click.option(
    "--radius", type=click.FloatRange(0.0, min_open=True), default=1.5, show_default=True,
    help="Largest centre distance (metres) of a matching vehicle pair.",
)


@click.group("evaluate", cls=_RunDirGroup, epilog=EPILOG)
def command() -> None:
    """Score detections against ground truth: RUN_DIR --truth TRUTH_DIR, or buildings/vehicles PRED TRUTH.

    \b
    baseline evaluate RUN_DIR --truth TRUTH_DIR [--json] [--iou 0.5] [--radius 1.5]
    baseline evaluate buildings PRED TRUTH [--iou 0.5] [--json]
    baseline evaluate vehicles PRED TRUTH [--radius 1.5] [--json]
    """


@command.command("run", epilog=EPILOG)
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--truth", "truth_dir", type=click.Path(path_type=Path), required=True,
              help="Truth folder with buildings.parquet and vehicles.parquet (a scene's truth/).")
@_iou_option
@_radius_option
@_json_option
def run_form(run_dir: Path, truth_dir: Path, iou: float, radius: float, as_json: bool) -> None:
    """Score RUN_DIR (buildings.parquet, vehicles.parquet) against TRUTH_DIR over the area both cover."""
    from baseline.evaluate import evaluate_run

    _show(evaluate_run(run_dir, truth_dir, iou=iou, radius=radius), as_json, f"{run_dir} vs {truth_dir}")


@command.command("buildings")
@click.argument("pred", type=click.Path(path_type=Path))
@click.argument("truth", type=click.Path(path_type=Path))
@_iou_option
@_json_option
def buildings_form(pred: Path, truth: Path, iou: float, as_json: bool) -> None:
    """Score footprints in PRED against TRUTH (any vector files; PRED is reprojected to TRUTH's CRS)."""
    from baseline.evaluate import evaluate_buildings

    _show(evaluate_buildings(pred, truth, iou=iou), as_json, f"buildings: {pred} vs {truth}")


@command.command("vehicles")
@click.argument("pred", type=click.Path(path_type=Path))
@click.argument("truth", type=click.Path(path_type=Path))
@_radius_option
@_json_option
def vehicles_form(pred: Path, truth: Path, radius: float, as_json: bool) -> None:
    """Score vehicles in PRED against TRUTH (any vector files; PRED is reprojected to TRUTH's CRS)."""
    from baseline.evaluate import evaluate_vehicles

    _show(evaluate_vehicles(pred, truth, radius=radius), as_json, f"vehicles: {pred} vs {truth}")
