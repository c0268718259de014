"""The indicator tables' columns: names, order and types (the contract with planners).

Every level (city, district, H3) has the same columns in the same order, so
tables concatenate and readers need one schema. Each count ``X`` comes as four
columns: ``X`` (detections, what the image shows), ``X_est`` (the real count the
detector's measured precision and recall imply), ``X_lo`` and ``X_hi`` (95%
interval of the real count). Ratios built on vehicle counts come the same way.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

COUNT_COLUMNS = ("building_count", "vehicles_total", "vehicles_on_road", "vehicles_parked", "vehicles_moving",
                 "vehicles_kerbside")
RATIO_COLUMNS = ("on_road_share", "on_road_per_lane_km", "on_road_to_parc_ratio")


def _uncertain(name: str) -> tuple[str, ...]:
    return (name, f"{name}_est", f"{name}_lo", f"{name}_hi")


ID_COLUMNS = ("city", "level", "zone_id", "zone_area_m2")
BUILDING_COLUMNS = (
    *_uncertain("building_count"),
    "footprint_area_m2",
    "coverage_ratio",
    "height_mean_m",
    "height_median_m",
    "height_p90_m",
    "height_max_m",
    "built_volume_m3",
    "floor_area_m2",
)
HEIGHT_COLUMNS = ("height_mean_m", "height_median_m", "height_p90_m", "height_max_m", "built_volume_m3", "floor_area_m2")
VEHICLE_COLUMNS = (
    *_uncertain("vehicles_total"),
    *_uncertain("vehicles_on_road"),
    *_uncertain("vehicles_parked"),
    *_uncertain("vehicles_moving"),
    *_uncertain("vehicles_kerbside"),
    *_uncertain("on_road_share"),
)
ROAD_COLUMNS = ("road_length_km", "lane_km", *_uncertain("on_road_per_lane_km"))
PARC_COLUMNS = (
    "car_parc_registered",
    "car_parc_source",
    "car_parc_year",
    "car_parc_note",
    "car_parc_illustrative",
    *_uncertain("on_road_to_parc_ratio"),
)
QUALITY_COLUMNS = ("valid_fraction", "acquired_at_utc", "acquired_at_local", "sensor", "gsd_m", "model")
STATUS_COLUMNS = ("vehicles_withheld", "figures_withheld", "notes")

INDICATOR_COLUMNS = (
    *ID_COLUMNS,
    *BUILDING_COLUMNS,
    *VEHICLE_COLUMNS,
    *ROAD_COLUMNS,
    *PARC_COLUMNS,
    *QUALITY_COLUMNS,
    *STATUS_COLUMNS,
    "geometry",
)

STRING_COLUMNS = frozenset(
    {"city", "level", "zone_id", "car_parc_source", "car_parc_note", "acquired_at_utc", "acquired_at_local",
     "sensor", "model", "notes"}
)
INT_COLUMNS = frozenset({*COUNT_COLUMNS, "car_parc_registered", "car_parc_year"})
BOOL_COLUMNS = frozenset({"vehicles_withheld", "figures_withheld"})
NULLABLE_BOOL_COLUMNS = frozenset({"car_parc_illustrative"})


def dtype_of(column: str) -> str:
    """pandas dtype of an indicator column."""
    if column in STRING_COLUMNS:
        return "string"
    if column in INT_COLUMNS:
        return "Int64"
    if column in BOOL_COLUMNS:
        return "bool"
    if column in NULLABLE_BOOL_COLUMNS:
        return "boolean"
    return "float64"


def make_frame(columns: dict[str, object], geometry: object, crs: object, n_rows: int) -> gpd.GeoDataFrame:
    """A GeoDataFrame with every indicator column, in order and typed; absent columns are null."""
    data = {}
    for name in INDICATOR_COLUMNS[:-1]:
        value = columns.get(name)
        series = pd.Series([pd.NA] * n_rows if value is None else value, index=pd.RangeIndex(n_rows))
        if dtype_of(name) == "float64":
            series = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            series = series.astype(dtype_of(name))
        data[name] = series
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(list(geometry), crs=crs), crs=crs)
