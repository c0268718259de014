"""The facts a report states, gathered once from the indicator tables and the run context.

The city indicator table is the authority. When a column is absent (an older or
partial aggregate) a few headline numbers fall back to counting the published
tables; when a column is present but empty the imagery could not support it and
the report says "not measurable" instead of counting anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np

from baseline.publish.indicators import BY_COLUMN, ZONE_KEYS
from baseline.publish.report_format import as_float, fmt_interval, fmt_number, is_missing

MAX_GSD_CARS_M = 0.6
MAX_GSD_BUILDINGS_M = 2.0

SENSOR_NAMES = {
    "vhr": "very-high-resolution optical imagery",
    "sentinel-2-l2a": "Sentinel-2 L2A",
    "landsat-c2-l2": "Landsat 8/9 Collection 2 Level-2",
    "sentinel-2-l1c": "Sentinel-2 L1C (top of atmosphere)",
    "landsat-l1": "Landsat Level-1 (digital numbers)",
}


@dataclass(frozen=True)
class Measure:
    """One indicator value with its 95% interval (any part may be missing).

    ``value`` is what the image shows (e.g. detections); ``est`` is the real
    count the detector's measured precision and recall imply, and ``lo``/``hi``
    bound the real value (95%).
    """

    column: str
    value: float | None
    lo: float | None = None
    hi: float | None = None
    est: float | None = None

    @property
    def kind(self) -> str:
        return BY_COLUMN[self.column].kind if self.column in BY_COLUMN else "number"

    @property
    def known(self) -> bool:
        return self.value is not None

    def text(self) -> str:
        return fmt_number(self.value, self.kind)

    def interval_text(self) -> str | None:
        return fmt_interval(self.lo, self.hi, self.kind)

    def est_text(self) -> str | None:
        """The best estimate of the real value, when it is known and reads differently."""
        if self.est is None:
            return None
        text = fmt_number(self.est, self.kind)
        return None if text == self.text() else text


@dataclass(frozen=True)
class Capabilities:
    """What imagery can honestly measure, by sensor and pixel size (DESIGN.md).

    The thresholds are those of ``baseline.aggregate`` (cars need 0.6 m pixels or
    finer, single buildings 2 m); the report only uses them to explain an empty map.
    """

    single_buildings: bool
    cars: bool
    large_moving_only: bool

    @classmethod
    def for_imagery(cls, sensor: str | None, gsd_m: float | None) -> Capabilities:
        if sensor == "sentinel-2-l2a" or (sensor is None and gsd_m is not None and 5.0 < gsd_m <= 20.0):
            return cls(single_buildings=False, cars=False, large_moving_only=True)
        if sensor == "landsat-c2-l2" or (gsd_m is not None and gsd_m > 20.0):
            return cls(single_buildings=False, cars=False, large_moving_only=False)
        if gsd_m is None:
            return cls(single_buildings=True, cars=True, large_moving_only=False)
        return cls(single_buildings=gsd_m <= MAX_GSD_BUILDINGS_M + 1e-9,
                   cars=gsd_m <= MAX_GSD_CARS_M + 1e-9, large_moving_only=False)


@dataclass(frozen=True)
class CarParc:
    """The registered car parc the catalog gives for the city."""

    registered: float | None
    source: str | None
    year: int | None
    note: str | None
    illustrative: bool


@dataclass(frozen=True)
class ReportFacts:
    """Everything the report's text states, in one place."""

    title: str
    city: str
    sensor: str | None
    gsd_m: float | None
    acquired_at_utc: Any
    acquired_at_local: Any
    timezone: str | None
    capabilities: Capabilities
    car_parc: CarParc
    privacy_min_vehicles: int | None
    models: list[dict[str, Any]]
    notes: list[str]
    scene_ids: list[str]
    run_id: str | None
    config_hash: str | None
    code_version: str | None
    h3_resolution: int | None
    measures: dict[str, Measure] = field(default_factory=dict)

    def measure(self, column: str) -> Measure:
        return self.measures.get(column, Measure(column, None))

    @property
    def sensor_name(self) -> str:
        if self.sensor is None:
            return "the imagery"
        return SENSOR_NAMES.get(str(self.sensor), str(self.sensor))


def gather_facts(
    buildings: gpd.GeoDataFrame,
    vehicles: gpd.GeoDataFrame,
    indicators_city: gpd.GeoDataFrame,
    indicators_h3: gpd.GeoDataFrame,
    context: dict[str, Any],
) -> ReportFacts:
    """Collect the report's facts; ``context`` fills what the tables do not say."""
    row = indicators_city.iloc[0].to_dict() if len(indicators_city) else {}

    def pick(column: str, key: str | None = None) -> Any:
        value = row.get(column)
        if is_missing(value):
            value = context.get(key or column)
        return None if is_missing(value) else value

    measures = {column: _measure(row, column) for column in BY_COLUMN if column in row}
    for column, fallback in _fallbacks(buildings, vehicles).items():
        if column not in row:
            measures[column] = fallback

    gsd_m = as_float(pick("gsd_m"))
    sensor = pick("sensor")
    city = str(context.get("city_name") or _display_name(pick("city")) or "the city")
    return ReportFacts(
        title=str(context.get("title") or f"Baseline of {city}: buildings and vehicles"),
        city=city,
        sensor=None if sensor is None else str(sensor),
        gsd_m=gsd_m,
        acquired_at_utc=pick("acquired_at_utc"),
        acquired_at_local=pick("acquired_at_local"),
        timezone=context.get("timezone"),
        capabilities=Capabilities.for_imagery(None if sensor is None else str(sensor), gsd_m),
        car_parc=_car_parc(row, context),
        privacy_min_vehicles=_int_or_none(context.get("privacy_min_vehicles")),
        models=_models(row, context),
        notes=_notes(row, context),
        scene_ids=[str(s) for s in context.get("scene_ids", [])],
        run_id=context.get("run_id"),
        config_hash=context.get("config_hash"),
        code_version=context.get("code_version"),
        h3_resolution=_h3_resolution(indicators_h3),
        measures=measures,
    )


def _measure(row: dict[str, Any], column: str) -> Measure:
    return Measure(
        column,
        as_float(row.get(column)),
        as_float(row.get(f"{column}_lo")),
        as_float(row.get(f"{column}_hi")),
        as_float(row.get(f"{column}_est")),
    )


def _fallbacks(buildings: gpd.GeoDataFrame, vehicles: gpd.GeoDataFrame) -> dict[str, Measure]:
    """Headline numbers counted from the tables, used only when the indicator column is absent."""
    out: dict[str, Measure] = {"building_count": Measure("building_count", float(len(buildings)))}
    if "height_m" in buildings.columns:
        heights = buildings["height_m"].dropna().to_numpy(dtype=float)
        if heights.size:
            out["height_mean_m"] = Measure("height_mean_m", float(np.mean(heights)))
            out["height_max_m"] = Measure("height_max_m", float(np.max(heights)))
    out["vehicles_total"] = Measure("vehicles_total", float(len(vehicles)))
    if "on_road" in vehicles.columns and len(vehicles):
        on_road = vehicles["on_road"].fillna(False).astype(bool)
        out["vehicles_on_road"] = Measure("vehicles_on_road", float(on_road.sum()))
        out["vehicles_parked"] = Measure("vehicles_parked", float((~on_road).sum()))
        out["on_road_share"] = Measure("on_road_share", float(on_road.mean()))
    return out


def _car_parc(row: dict[str, Any], context: dict[str, Any]) -> CarParc:
    catalog = context.get("car_parc") or {}
    registered = as_float(row.get("car_parc_registered"))
    if registered is None:
        registered = as_float(catalog.get("value"))

    def text(column: str, key: str) -> str | None:
        value = row.get(column)
        if is_missing(value):
            value = catalog.get(key)
        return None if is_missing(value) else " ".join(str(value).split())

    note = text("car_parc_note", "note")
    illustrative = row.get("car_parc_illustrative")
    if is_missing(illustrative):
        illustrative = catalog.get("illustrative")
    if is_missing(illustrative):
        illustrative = bool(note and "illustrative" in note.lower())
    return CarParc(
        registered=registered,
        source=text("car_parc_source", "source"),
        year=_int_or_none(text("car_parc_year", "year")),
        note=note,
        illustrative=bool(illustrative),
    )


def _models(row: dict[str, Any], context: dict[str, Any]) -> list[dict[str, Any]]:
    """Models from the context, else parsed from the table's ``name@version+name@version``."""
    models = [dict(m) for m in context.get("models", []) if isinstance(m, dict)]
    if not models and not is_missing(row.get("model")):
        for part in str(row["model"]).split("+"):
            name, _, version = part.strip().partition("@")
            models.append({"name": name, "version": version} if version else {"name": name})
    return models


def _notes(row: dict[str, Any], context: dict[str, Any]) -> list[str]:
    """Plain-language notes on what was withheld or not measurable, deduplicated."""
    notes: list[str] = []
    for value in (row.get("notes"), *context.get("notes", [])):
        if is_missing(value):
            continue
        for note in str(value).split(";"):
            note = " ".join(note.split())
            if note and note not in notes:
                notes.append(note)
    return notes


def _h3_resolution(cells: gpd.GeoDataFrame) -> int | None:
    key = next((k for k in ZONE_KEYS if k in cells.columns), None)
    if key is None or not len(cells):
        return None
    try:
        import h3

        return int(h3.get_resolution(str(cells[key].iloc[0])))
    except Exception:  # an invalid cell id: the report simply omits the resolution
        return None


def _display_name(city: Any) -> str | None:
    """A catalog id such as ``new-york`` as a name (``New York``); other names as they are."""
    if city is None:
        return None
    text = str(city)
    return text.replace("-", " ").replace("_", " ").title() if text.islower() else text


def _int_or_none(value: Any) -> int | None:
    number = as_float(value)
    return None if number is None else int(number)
