"""Column contracts of the tables the project reads and writes.

Truth tables (written by ``synth`` beside a scene) and output tables (written by
``publish``) share these names, so ``evaluate`` can compare them directly.
Bump :data:`TABLE_SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

import geopandas as gpd

from baseline.errors import MissingColumnError

TABLE_SCHEMA_VERSION = "1.0"

VEHICLE_CLASSES = ("car", "large")
HEIGHT_SOURCES = ("shadow", "learned", "dsm", "prior")

# Vehicle context in the truth: where the renderer put the vehicle.
VEHICLE_CONTEXTS = ("lane", "queue", "kerb", "car_park")

BUILDINGS_TRUTH = ("geometry", "building_id", "height_m", "height_origin", "roof")
VEHICLES_TRUTH = (
    "geometry",
    "vehicle_id",
    "class",
    "on_road",
    "moving",
    "speed_kmh",
    "heading_deg",
    "context",
    "length_m",
    "width_m",
)
ROADS_TRUTH = ("geometry", "road_id", "highway", "lanes", "oneway", "bearing_deg")

BUILDINGS_OUT = ("geometry", "building_id", "height_m", "height_source", "height_sigma_m", "score", "scene_id")
VEHICLES_OUT = (
    "geometry",
    "vehicle_id",
    "class",
    "on_road",
    "moving",
    "speed_kmh",
    "heading_deg",
    "score",
    "scene_id",
)


def require_columns(frame: gpd.GeoDataFrame, columns: tuple[str, ...], source: str) -> None:
    """Raise :class:`MissingColumnError` for the first of ``columns`` not in ``frame``."""
    for column in columns:
        if column not in frame.columns:
            raise MissingColumnError(source, column, frame.columns)
