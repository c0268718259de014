"""Evaluate: score detections against ground truth, one-to-one.

- :func:`match_buildings` / :func:`match_vehicles`: optimal one-to-one matching
  (IoU threshold for footprints, centre radius for vehicles);
- :func:`evaluate_buildings` / :func:`evaluate_vehicles`: scores of two vector files;
- :func:`evaluate_run`: scores of a run folder against a scene's truth folder,
  the numbers ``baseline evaluate`` prints and model cards quote.
"""

from baseline.evaluate.evaluation import (
    RUN_KEYS,
    evaluate_buildings,
    evaluate_run,
    evaluate_vehicles,
)
from baseline.evaluate.inputs import MissingCRSError
from baseline.evaluate.matching import Matches, match_buildings, match_vehicles
from baseline.evaluate.scoring import building_metrics, vehicle_metrics

__all__ = [
    "RUN_KEYS",
    "Matches",
    "MissingCRSError",
    "building_metrics",
    "evaluate_buildings",
    "evaluate_run",
    "evaluate_vehicles",
    "match_buildings",
    "match_vehicles",
    "vehicle_metrics",
]
