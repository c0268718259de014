"""Classify: each detected vehicle on the road or parked, from map context."""

from baseline.classify.on_road import ROAD_CONTEXTS, classify_vehicles

__all__ = ["ROAD_CONTEXTS", "classify_vehicles"]
