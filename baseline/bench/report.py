"""The bench's table (terminal) and JSON (file): the issue's keys first, details after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from baseline.core.atomic import write_text_atomic

TARGETS = {"ratio_model": (">=", 0.7), "vs_naive": (">=", 2.0), "memory_growth": ("<=", 1.3)}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def bench_table(summary: dict[str, Any]) -> Table:
    """Measured figures with the acceptance target beside each ratio."""
    table = Table(title=f"baseline bench: {summary['area_km2']:.3f} km² on {summary['device']} "
                        f"({summary['inference']}, {summary['workers']} workers x {summary['threads_per_worker']} "
                        f"threads, batch {summary['batch_size']})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_column("met", justify="center")
    rows = [
        ("end_to_end_km2_s", "km²/s, whole pipeline (start-up included)"),
        ("model_only_km2_s", "km²/s, networks alone (random input)"),
        ("ratio_model", "end to end / model only"),
        ("end_to_end_marginal_km2_s", "km²/s of the 4x run's extra area (start-up paid)"),
        ("ratio_model_marginal", "marginal / model only"),
        ("naive_km2_s", "km²/s, the same detections by a naive loop"),
        ("vs_naive", "end to end / naive"),
        ("vs_naive_marginal", "marginal / naive"),
        ("peak_rss_mb", "MB, peak memory of the run's processes"),
        ("peak_rss_4x_mb", "MB, the same at 4x the area"),
        ("memory_growth", "peak at 4x / peak at 1x"),
    ]
    for key, label in rows:
        value = summary.get(key)
        target, met = "", ""
        if key in TARGETS:
            op, bound = TARGETS[key]
            target = f"{op} {bound:g}"
            if value is not None:
                met = "yes" if (value >= bound if op == ">=" else value <= bound) else "NO"
        table.add_row(f"{key}\n[dim]{label}[/dim]", _fmt(value), target, met)
    return table


def write_bench_json(summary: dict[str, Any], path: Path) -> None:
    """The summary as JSON, atomically."""
    write_text_atomic(Path(path), json.dumps(summary, indent=2, default=str) + "\n")
