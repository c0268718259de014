"""Detector rates from model cards: the measured precision and recall behind every interval.

A model card (``models/<name>/<version>/card.yaml`` or ``.json``) carries an
``evaluation`` section. Each rate in it is either counts or rates with the size
of the evaluation set::

    evaluation:
      tp: 812            # or: precision: 0.93, recall: 0.87, n_truth: 932 (n_pred optional)
      fp: 64
      fn: 120
      per_class:         # optional, vehicles: car, large
        car: {tp: 790, fp: 50, fn: 100}
      per_context:       # optional, vehicles: on_road, parked, moving, kerb, car_park
        parked: {precision: 0.9, recall: 0.8, n_truth: 300}
      per_class_context: # optional, vehicles: class -> context -> rate
        large: {moving: {tp: 12, fp: 2, fn: 5}}

``baseline evaluate`` reports the same quantities, so a card can be written
straight from its output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from baseline.aggregate.types import DetectorRates, MeasuredRate
from baseline.errors import BaselineError, ConfigError, InputFileError


def read_model_card(path: str | Path) -> dict[str, Any]:
    """Read a model card (YAML or JSON) into a mapping."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "model card not found", hint="each model folder needs a card.yaml")
    try:
        text = path.read_text()
        card = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputFileError(path, f"not a readable model card ({exc})") from exc
    if not isinstance(card, dict):
        raise InputFileError(path, "a model card must be a mapping of fields")
    return card


def _rate(entry: object, where: str) -> MeasuredRate:
    """One rate from ``{tp, fp, fn}`` or ``{precision, recall, n_truth[, n_pred]}``."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with tp/fp/fn or precision/recall/n_truth")
    try:
        if {"tp", "fp", "fn"} <= entry.keys():
            return MeasuredRate.from_counts(float(entry["tp"]), float(entry["fp"]), float(entry["fn"]))
        if {"precision", "recall", "n_truth"} <= entry.keys():
            n_pred = entry.get("n_pred")
            return MeasuredRate.from_precision_recall(
                float(entry["precision"]), float(entry["recall"]), float(entry["n_truth"]),
                None if n_pred is None else float(n_pred),
            )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, BaselineError):
            raise ConfigError(f"{where}: {exc}") from None
        raise ConfigError(f"{where}: rates must be numbers ({exc})") from None
    raise ConfigError(
        f"{where}: needs tp, fp and fn, or precision, recall and n_truth",
        hint=f"keys present: {', '.join(map(str, entry)) or '(none)'}",
    )


def _degenerate(entry: object) -> bool:
    """True for a well-formed rate that says nothing usable: no true detection, or nothing measured.

    A class the detector never found correctly in evaluation (tp = 0) has no
    recall to divide by; such a per-class or per-context entry is skipped and the
    less specific rate is used instead.
    """
    if not isinstance(entry, Mapping):
        return False
    try:
        if {"tp", "fp", "fn"} <= entry.keys():
            return float(entry["tp"]) <= 0
        if {"precision", "recall", "n_truth"} <= entry.keys():
            return float(entry["recall"]) <= 0 or float(entry["precision"]) <= 0 or float(entry["n_truth"]) <= 0
    except (TypeError, ValueError):
        return False
    return False


def _evaluation(card: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = card.get("evaluation", card.get("metrics"))
    if not isinstance(section, Mapping):
        raise ConfigError(f"model card {name}: no 'evaluation' section", hint="see baseline/aggregate/rates.py")
    return section


def _card_name(card: Mapping[str, Any], fallback: str) -> str:
    name, version = card.get("name"), card.get("version")
    if name is None:
        return fallback
    return f"{name}@{version}" if version is not None else str(name)


def rates_from_cards(
    building_card: Mapping[str, Any] | None, vehicle_card: Mapping[str, Any] | None
) -> DetectorRates:
    """:class:`DetectorRates` from the building and vehicle model cards (either may be None)."""
    buildings = vehicles = None
    classes: dict[str, MeasuredRate] = {}
    contexts: dict[str, MeasuredRate] = {}
    class_contexts: dict[tuple[str, str], MeasuredRate] = {}
    sources: list[str] = []
    skipped: list[str] = []
    notes: list[str] = []
    if building_card is not None:
        name = _card_name(building_card, "buildings")
        buildings = _rate(_evaluation(building_card, name), f"model card {name}: evaluation")
        sources.append(name)
    if vehicle_card is not None:
        name = _card_name(vehicle_card, "vehicles")
        section = _evaluation(vehicle_card, name)
        where = f"model card {name}: evaluation"
        vehicles = _rate(section, where)
        for cls, entry in (section.get("per_class") or {}).items():
            if _degenerate(entry):
                skipped.append(f"per_class.{cls}")
                continue
            classes[str(cls)] = _rate(entry, f"{where}.per_class.{cls}")
        for ctx, entry in (section.get("per_context") or {}).items():
            if _degenerate(entry):
                skipped.append(f"per_context.{ctx}")
                continue
            contexts[str(ctx)] = _rate(entry, f"{where}.per_context.{ctx}")
        for cls, by_ctx in (section.get("per_class_context") or {}).items():
            if not isinstance(by_ctx, Mapping):
                raise ConfigError(f"{where}.per_class_context.{cls}: expected context -> rate")
            for ctx, entry in by_ctx.items():
                if _degenerate(entry):
                    skipped.append(f"per_class_context.{cls}.{ctx}")
                    continue
                class_contexts[(str(cls), str(ctx))] = _rate(entry, f"{where}.per_class_context.{cls}.{ctx}")
        sources.append(name)
        if skipped:
            notes.append(f"model card {name}: no true detection in {', '.join(skipped)}; the overall rate is used there")
    return DetectorRates(
        buildings, vehicles, classes, contexts, class_contexts, source=", ".join(sources), notes=tuple(notes)
    )


def load_detector_rates(building_card: str | Path | None, vehicle_card: str | Path | None) -> DetectorRates:
    """Read both model cards from disk and return their rates."""
    return rates_from_cards(
        None if building_card is None else read_model_card(building_card),
        None if vehicle_card is None else read_model_card(vehicle_card),
    )
