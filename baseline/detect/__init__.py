"""Detect: buildings (footprints + heights) and vehicles (oriented boxes, class, motion) from chips.

Entry points:

- :func:`load_model` (the one safetensors-only loader) and :func:`read_model_ref`;
- :func:`detect_buildings`: all chips of one tile -> stitched maps -> buildings
  with ``height_source`` shadow (from sun angles) or learned;
- :func:`detect_vehicles`: chips -> oriented boxes, each owned by one chip core;
- :func:`keep_in_core`: trim a table to a tile's core box;
- :func:`get_detectors`: both models cached per worker process, taking a
  preprocessed tile and its Scene (what ``baseline run`` uses).

Tiling (each card's ``tiling`` block; what the shipped models were measured
with): vehicles take 512 px chips at 0.3 m overlapping by 64 px; buildings take
768 px chips at 0.3 m overlapping by 192 px (the net folds 2x2 pixels into
channels and its maps are at 0.6 m), and a tile halo of at least 100 m so
whole footprints and their shadows lie inside the tile window. Chips at another
GSD are resampled to the model's.
"""

from baseline.detect.infer import detect_buildings, detect_vehicles, keep_in_core
from baseline.detect.service import Detectors, get_detectors
from baseline.detect.weights import LoadedModel, ModelRef, load_model, read_model_ref, save_model

__all__ = [
    "Detectors",
    "LoadedModel",
    "ModelRef",
    "detect_buildings",
    "detect_vehicles",
    "get_detectors",
    "keep_in_core",
    "load_model",
    "read_model_ref",
    "save_model",
]
