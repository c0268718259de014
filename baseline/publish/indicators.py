"""The indicator columns of DESIGN.md, as publish and the report name and show them.

``aggregate`` computes the values; this module only knows each column's plain
label, unit and kind, so tables can enforce the privacy rule and the report can
format ``value [lo, hi]`` without guessing. Names follow DESIGN.md and
``baseline.aggregate``: each count or ratio ``X`` may come with ``X_est``,
``X_lo`` and ``X_hi``; zones are keyed by ``zone_id`` (``h3_cell`` is accepted too).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Indicator:
    """One indicator column.

    Attributes:
        column: column name in the indicator tables.
        label: plain-language name for planners.
        kind: ``count`` (integer), ``ratio`` (shown as percent), ``length`` (m),
            ``area`` (m²), ``volume`` (m³), ``km``, ``per_km`` or ``number``.
        interval: whether the table carries ``<column>_lo`` and ``<column>_hi``.
        vehicle_figure: withheld in H3 cells that fail the privacy rule.
    """

    column: str
    label: str
    kind: str
    interval: bool = False
    vehicle_figure: bool = False


INDICATORS: tuple[Indicator, ...] = (
    Indicator("building_count", "Buildings", "count", interval=True),
    Indicator("footprint_area_m2", "Building footprint area", "area", interval=True),
    Indicator("coverage_ratio", "Share of ground covered by buildings", "ratio", interval=True),
    Indicator("height_mean_m", "Mean building height", "length", interval=True),
    Indicator("height_median_m", "Median building height", "length", interval=True),
    Indicator("height_p90_m", "90th percentile building height", "length", interval=True),
    Indicator("height_max_m", "Tallest building", "length", interval=True),
    Indicator("built_volume_m3", "Built volume", "volume", interval=True),
    Indicator("floor_area_m2", "Floor area (estimated)", "area", interval=True),
    Indicator("vehicles_total", "Vehicles seen", "count", interval=True, vehicle_figure=True),
    Indicator("vehicles_on_road", "Vehicles on the road", "count", interval=True, vehicle_figure=True),
    Indicator("vehicles_parked", "Vehicles parked", "count", interval=True, vehicle_figure=True),
    Indicator("vehicles_moving", "Vehicles moving", "count", interval=True, vehicle_figure=True),
    Indicator(
        "vehicles_kerbside", "Vehicles at the kerb (on-road or parked by the kerb rule)", "count",
        interval=True, vehicle_figure=True,
    ),
    Indicator("on_road_share", "Share of vehicles on the road", "ratio", interval=True, vehicle_figure=True),
    Indicator("road_length_km", "Road length", "km"),
    Indicator("lane_km", "Lane length", "km"),
    Indicator(
        "on_road_per_lane_km", "Vehicles on the road per lane-km", "per_km",
        interval=True, vehicle_figure=True,
    ),
    Indicator("car_parc_registered", "Registered cars (car parc)", "count"),
    Indicator(
        "on_road_to_parc_ratio", "On the road, as a share of registered cars", "ratio",
        interval=True, vehicle_figure=True,
    ),
    Indicator("valid_fraction", "Usable image area (cloud-free, in image)", "ratio"),
)

BY_COLUMN: dict[str, Indicator] = {ind.column: ind for ind in INDICATORS}

QUALITY_COLUMNS = ("acquired_at_utc", "acquired_at_local", "sensor", "gsd_m", "model")
CITY_COLUMNS = ("city", "car_parc_source", "car_parc_year", "car_parc_note", "car_parc_illustrative")
STATUS_COLUMNS = ("vehicles_withheld", "figures_withheld", "notes")
ZONE_KEYS = ("h3_cell", "zone_id")


# ``X_est`` is the real count the detector's measured precision and recall imply;
# ``X_lo`` and ``X_hi`` bound it (95%). ``X`` itself is what the image shows.
UNCERTAINTY_SUFFIXES = ("", "_est", "_lo", "_hi")


def _vehicle_figure_columns() -> frozenset[str]:
    columns: set[str] = set()
    for ind in INDICATORS:
        if ind.vehicle_figure:
            columns.update(f"{ind.column}{suffix}" for suffix in UNCERTAINTY_SUFFIXES)
    return frozenset(columns)


VEHICLE_FIGURE_COLUMNS: frozenset[str] = _vehicle_figure_columns()
