"""Pieces both trainers share: input statistics, scene descriptions, card assembly, writing results."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baseline import __version__
from baseline.core.atomic import write_text_atomic
from baseline.detect.cards import DATA_NOTE, WEIGHTS_LICENCE
from baseline.train.data import LabelledScene
from baseline.train.loop import FitRecord

BANDS = ["blue", "green", "red", "nir"]


def band_stats(images: list[np.ndarray], valids: list[np.ndarray], seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-band mean and standard deviation of the pixel values over valid pixels (a sample)."""
    rng = np.random.default_rng(seed)
    samples = []
    for image, valid in zip(images, valids, strict=True):
        rows, cols = np.nonzero(valid)
        if rows.size == 0:
            continue
        pick = rng.choice(rows.size, size=min(rows.size, 200_000), replace=False)
        samples.append(image[:, rows[pick], cols[pick]].astype(np.float64))
    if not samples:
        return [1000.0] * 4, [1000.0] * 4
    data = np.concatenate(samples, axis=1)
    return data.mean(axis=1).round(3).tolist(), np.maximum(data.std(axis=1), 1e-3).round(3).tolist()


def describe_scene(scene: LabelledScene) -> dict[str, Any]:
    """What the card records about one training or evaluation scene."""
    render = {}
    render_json = Path(scene.path) / "render.json"
    if render_json.exists():
        try:
            r = json.loads(render_json.read_text())
            render = {k: r[k] for k in ("city", "seed", "gsd_m", "time") if k in r}
        except (json.JSONDecodeError, OSError):
            render = {}
    return {
        "scene_id": scene.scene_id,
        "folder": Path(scene.path).name,
        **render,
        "sun_elevation_deg": scene.sun_elevation_deg,
        "sun_azimuth_deg": scene.sun_azimuth_deg,
        "gsd_m": scene.gsd_m,
        "shape": list(scene.valid.shape),
        "buildings": 0 if scene.buildings is None else len(scene.buildings),
        "vehicles": 0 if scene.vehicles is None else len(scene.vehicles),
    }


def training_block(
    record: FitRecord, train: list[LabelledScene], settings: dict[str, Any], device: torch.device
) -> dict[str, Any]:
    """The card's ``training`` section."""
    return {
        "data": [describe_scene(s) for s in train],
        "settings": settings,
        "iterations": record.iterations,
        "seconds": round(record.seconds, 1),
        "final_loss": round(record.final_loss, 5),
        "loss_curve": [round(v, 5) for v in record.loss_curve],
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "code_version": __version__,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def base_card(name: str, version: str, task: str, summary: str) -> dict[str, Any]:
    """The fields every card shares."""
    return {
        "name": name,
        "version": version,
        "task": task,
        "summary": summary,
        "licence": WEIGHTS_LICENCE,
        "data_note": DATA_NOTE,
    }


def name_version(out: Path) -> tuple[str, str]:
    """``models/<name>/<version>`` -> (name, version)."""
    out = Path(out)
    return out.parent.name or "model", out.name


def write_metrics(out: Path, evaluation: dict[str, Any] | None, record: FitRecord | dict[str, Any] | None) -> None:
    """``metrics.json`` beside the weights: the evaluation and the loss record."""
    fit = asdict(record) if isinstance(record, FitRecord) else record
    doc = {"evaluation": evaluation, "fit": fit}
    write_text_atomic(Path(out) / "metrics.json", json.dumps(doc, indent=2) + "\n")


def rewrite_evaluation(out: Path, evaluation: dict[str, Any] | None) -> None:
    """Replace the evaluation in ``out``'s ``metrics.json`` and keep its loss record (a rescore)."""
    path = Path(out) / "metrics.json"
    fit = json.loads(path.read_text()).get("fit") if path.exists() else None
    write_metrics(out, evaluation, fit)
