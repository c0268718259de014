"""Aggregate: detections to indicators per city, district and H3 cell, with uncertainty.

``aggregate()`` is the stage's entry point; ``load_car_parc()`` reads the
registered car parc from the data catalog; ``load_detector_rates()`` reads the
measured precision and recall from model cards. See ``intervals`` for how the
95% intervals are made and ``privacy`` for what is withheld and why.
"""

from baseline.aggregate.catalog import load_car_parc
from baseline.aggregate.columns import INDICATOR_COLUMNS
from baseline.aggregate.indicators import aggregate
from baseline.aggregate.intervals import METHOD as INTERVAL_METHOD
from baseline.aggregate.privacy import METHOD as PRIVACY_METHOD
from baseline.aggregate.rates import load_detector_rates, rates_from_cards, read_model_card
from baseline.aggregate.types import (
    Capabilities,
    CarParc,
    DetectorRates,
    Indicators,
    MeasuredRate,
    SceneQuality,
    ValidCoverage,
)

__all__ = [
    "INDICATOR_COLUMNS",
    "INTERVAL_METHOD",
    "PRIVACY_METHOD",
    "Capabilities",
    "CarParc",
    "DetectorRates",
    "Indicators",
    "MeasuredRate",
    "SceneQuality",
    "ValidCoverage",
    "aggregate",
    "load_car_parc",
    "load_detector_rates",
    "rates_from_cards",
    "read_model_card",
]
