"""``aggregate()``: detections, roads and catalog figures in, indicator tables out.

One pass per level (city, districts, H3 cells): assign each object to a zone by
its centroid, add up, estimate real counts with intervals (``intervals``), then
withhold what must not be published, for three reasons, each recorded in the
row's ``notes`` and in :attr:`Indicators.notes`:

- the imagery cannot support the figure (``Capabilities``): e.g. Sentinel-2
  gives no building or vehicle counts, so those columns are null;
- too little of the zone was seen (``valid_fraction < min_valid_fraction``):
  no image-derived figures at all (road length and lane length come from the
  map, not the image, and stay);
- privacy (``privacy``): too few vehicles, or a total would reveal such a zone.

Objects whose centroid lies outside the AOI are left out. Counts are of what the
valid part of the image shows; they are not scaled up for cloud or nodata.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from baseline.aggregate import privacy
from baseline.aggregate.columns import HEIGHT_COLUMNS, make_frame
from baseline.aggregate.intervals import N_DRAWS, SEED, RateSampler, Summary, simulate
from baseline.aggregate.measures import (
    RATED_PLACES,
    Stratum,
    building_measures,
    rated_place,
    road_measures,
    vehicle_counts,
)
from baseline.aggregate.types import (
    Capabilities,
    CarParc,
    DetectorRates,
    Indicators,
    SceneQuality,
    ValidCoverage,
)
from baseline.aggregate.validity import valid_fractions
from baseline.aggregate.zones import Zones, assign, city_zones, district_zones, h3_zones
from baseline.core.geo import require_same_crs
from baseline.core.schemas import VEHICLE_CLASSES, require_columns
from baseline.errors import CRSMismatchError, InvalidValueError

log = logging.getLogger(__name__)

_STREAMS = {"city": 1, "district": 2, "h3": 3}


@dataclass
class _Level:
    """Everything measured on one level, before anything is withheld."""

    zones: Zones
    strata: tuple[Stratum, ...]
    buildings: dict[str, np.ndarray]
    building_summary: dict[str, Summary]
    vehicle_counts: np.ndarray  # (zones, strata)
    vehicle_summary: dict[str, Summary]
    vehicle_zone: np.ndarray  # zone of each vehicle
    road_km: np.ndarray
    lane_km: np.ndarray
    valid: np.ndarray

    @property
    def vehicles_total(self) -> np.ndarray:
        return self.vehicle_counts.sum(axis=1)


def _check_frame(frame: gpd.GeoDataFrame, name: str, crs: CRS, columns: tuple[str, ...]) -> None:
    if len(frame) == 0:
        return
    if frame.crs is None:
        raise CRSMismatchError(f"{name} vs scene", "(none)", crs.to_string())
    require_same_crs(f"{name} vs scene", frame.crs, crs)
    require_columns(frame, columns, name)


def _inside(frame: gpd.GeoDataFrame, aoi: shapely.Geometry) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Rows whose centroid lies in the AOI (border included), and those centroids."""
    if len(frame) == 0:
        return frame, np.zeros(0, dtype=object)
    centres = shapely.centroid(np.asarray(frame.geometry.values, dtype=object))
    shapely.prepare(aoi)
    keep = shapely.intersects(aoi, centres)
    return frame[keep], centres[keep]


def _strata(present: np.ndarray) -> tuple[Stratum, ...]:
    """Every (class, on-road, moving, place) stratum of the known classes and of any other class present."""
    classes = list(VEHICLE_CLASSES) + sorted(set(map(str, present)) - set(VEHICLE_CLASSES))
    return tuple(Stratum(c, o, m, p) for c in classes for o in (True, False) for m in (False, True)
                 for p in RATED_PLACES)


def _local_times(quality: SceneQuality) -> tuple[str, str]:
    try:
        zone = ZoneInfo(quality.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidValueError("timezone", quality.timezone, "an IANA time zone such as Europe/Helsinki") from None
    utc = quality.acquired_at_utc.astimezone(UTC)
    return utc.isoformat(timespec="seconds"), utc.astimezone(zone).isoformat(timespec="seconds")


def _measure_level(
    zones: Zones, b_frame: gpd.GeoDataFrame, b_centres: np.ndarray, v_frame: gpd.GeoDataFrame,
    v_centres: np.ndarray, roads: gpd.GeoDataFrame, strata: tuple[Stratum, ...], *, crs: CRS,
    h3_resolution: int, rates: DetectorRates, sampler: RateSampler, valid: ValidCoverage | None,
    default_valid: float, parc_value: float,
) -> _Level:
    n = len(zones)
    stream = _STREAMS[zones.level]
    b_zone = assign(zones, b_centres, crs, h3_resolution)
    heights = b_frame["height_m"].to_numpy(dtype=float) if "height_m" in b_frame else np.full(len(b_frame), np.nan)
    b = building_measures(b_zone, shapely.area(np.asarray(b_frame.geometry.values, dtype=object)), heights, n)
    b_summary = simulate(
        b["building_count"][:, None], [rates.buildings], {"building_count": np.array([True])}, {},
        sampler=sampler, stream=stream,
    )
    v_zone = assign(zones, v_centres, crs, h3_resolution)
    if len(v_frame):
        cls = v_frame["class"].astype(str).to_numpy()
        on_road = v_frame["on_road"].fillna(False).to_numpy(dtype=bool)
        moving = v_frame["moving"].fillna(False).to_numpy(dtype=bool)
    else:
        cls, on_road, moving = np.zeros(0, dtype=object), np.zeros(0, bool), np.zeros(0, bool)
    place = rated_place(v_frame["context"].to_numpy() if "context" in v_frame else None, len(v_frame))
    counts = vehicle_counts(v_zone, cls, on_road, moving, strata, n, place)
    road_km, lane_km = road_measures(
        np.asarray(roads.geometry.values, dtype=object), roads["lanes"].to_numpy(dtype=float), zones.land
    ) if len(roads) else (np.zeros(n), np.zeros(n))
    s_on = np.array([s.on_road for s in strata], dtype=bool)
    s_moving = np.array([s.moving for s in strata], dtype=bool)
    s_kerb = np.array([s.kerbside for s in strata], dtype=bool)
    v_summary = simulate(
        counts,
        [rates.vehicle_rate(s.vehicle_class, s.contexts) for s in strata],
        {"vehicles_total": np.ones(len(strata), bool), "vehicles_on_road": s_on,
         "vehicles_parked": ~s_on, "vehicles_moving": s_moving, "vehicles_kerbside": s_kerb},
        {"on_road_share": ("vehicles_on_road", "vehicles_total"),
         "on_road_per_lane_km": ("vehicles_on_road", lane_km),
         "on_road_to_parc_ratio": ("vehicles_on_road", np.full(n, parc_value))},
        sampler=sampler, stream=10 + stream,
    )
    return _Level(zones, strata, b, b_summary, counts, v_summary, v_zone, road_km, lane_km,
                  valid_fractions(zones, valid, default_valid))


def _contributions(inner: _Level, outer: _Level) -> list[np.ndarray]:
    """Per zone of ``outer``, which zones of ``inner`` hold at least one of its vehicles."""
    masks = []
    both = (inner.vehicle_zone >= 0) & (outer.vehicle_zone >= 0)
    for j in range(len(outer.zones)):
        mask = np.zeros(len(inner.zones), dtype=bool)
        mask[inner.vehicle_zone[both & (outer.vehicle_zone == j)]] = True
        masks.append(mask)
    return masks


def _suppress(levels: dict[str, _Level], min_vehicles: int, low_valid: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Vehicle figures withheld per level (primary and complementary suppression, to a fixpoint)."""
    counts = {name: level.vehicles_total for name, level in levels.items()}
    withheld = {name: privacy.primary(counts[name], min_vehicles) | low_valid[name] for name in levels}
    city_pub = ~withheld["city"].copy()
    h3_to_city = _contributions(levels["h3"], levels["city"])
    district = levels.get("district")
    if district is not None:
        d_to_city = _contributions(district, levels["city"])
        h3_to_district = _contributions(levels["h3"], district)
    while True:
        before = (city_pub.copy(), {k: v.copy() for k, v in withheld.items()})
        if district is not None:
            withheld["district"], city_pub = privacy.complementary(
                counts["district"], withheld["district"], d_to_city, city_pub, min_vehicles
            )
            totals = h3_to_city + h3_to_district
            published = np.concatenate([city_pub, ~withheld["district"]])
        else:
            totals, published = h3_to_city, city_pub
        withheld["h3"], published = privacy.complementary(counts["h3"], withheld["h3"], totals, published, min_vehicles)
        city_pub = published[:1]
        if district is not None:
            withheld["district"] = ~published[1:]
        if np.array_equal(city_pub, before[0]) and all(np.array_equal(withheld[k], before[1][k]) for k in withheld):
            break
    withheld["city"] = ~city_pub
    return withheld


def _frame(
    level: _Level, *, city: str, crs: CRS, capabilities: Capabilities, quality: SceneQuality,
    car_parc: CarParc | None, withheld_privacy: np.ndarray, min_valid_fraction: float,
) -> gpd.GeoDataFrame:
    zones, n = level.zones, len(level.zones)
    low_valid = ~(level.valid >= min_valid_fraction)
    vehicles_off = low_valid | withheld_privacy | (not capabilities.vehicles)
    buildings_off = low_valid | (not capabilities.buildings_as_objects)
    heights_off = buildings_off | (not capabilities.heights)
    notes: list[list[str]] = [[] for _ in range(n)]
    for i in range(n):
        if low_valid[i]:
            notes[i].append(f"valid fraction below {min_valid_fraction:g}: no image figures")
        if withheld_privacy[i] and capabilities.vehicles:
            notes[i].append("vehicle figures withheld for privacy")
        if capabilities.reason and not (capabilities.vehicles and capabilities.buildings_as_objects and capabilities.heights):
            notes[i].append(f"not supported by the imagery: {capabilities.reason}")

    def masked(values: np.ndarray, off: np.ndarray | bool) -> np.ndarray:
        out = np.asarray(values, dtype=float).copy()
        out[np.broadcast_to(off, out.shape)] = np.nan
        return out

    cols: dict[str, object] = {
        "city": [city] * n, "level": [zones.level] * n, "zone_id": list(zones.ids), "zone_area_m2": zones.area_m2,
    }
    b = level.buildings
    for name in ("building_count", "footprint_area_m2", *HEIGHT_COLUMNS):
        cols[name] = masked(b[name], heights_off if name in HEIGHT_COLUMNS else buildings_off)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["coverage_ratio"] = masked(b["footprint_area_m2"] / zones.area_m2, buildings_off | ~(zones.area_m2 > 0))
    summary = level.building_summary["building_count"]
    for suffix, values in (("est", summary.est), ("lo", summary.lo), ("hi", summary.hi)):
        cols[f"building_count_{suffix}"] = masked(values, buildings_off)

    counts = level.vehicle_counts
    strata_on = np.array([s.on_road for s in level.strata], dtype=bool)
    strata_moving = np.array([s.moving for s in level.strata], dtype=bool)
    strata_kerb = np.array([s.kerbside for s in level.strata], dtype=bool)
    raw = {
        "vehicles_total": counts.sum(axis=1),
        "vehicles_on_road": counts[:, strata_on].sum(axis=1),
        "vehicles_parked": counts[:, ~strata_on].sum(axis=1),
        "vehicles_moving": counts[:, strata_moving].sum(axis=1),
        "vehicles_kerbside": counts[:, strata_kerb].sum(axis=1),
    }
    parc = float(car_parc.value) if car_parc is not None and zones.level == "city" else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        raw["on_road_share"] = np.where(raw["vehicles_total"] > 0, raw["vehicles_on_road"] / raw["vehicles_total"], np.nan)
        raw["on_road_per_lane_km"] = np.where(level.lane_km > 0, raw["vehicles_on_road"] / level.lane_km, np.nan)
        raw["on_road_to_parc_ratio"] = raw["vehicles_on_road"] / parc
    for name, values in raw.items():
        off = vehicles_off | ((not capabilities.moving) and name == "vehicles_moving")
        cols[name] = masked(values, off)
        s = level.vehicle_summary[name]
        for suffix, v in (("est", s.est), ("lo", s.lo), ("hi", s.hi)):
            cols[f"{name}_{suffix}"] = masked(v, off)

    cols["road_length_km"], cols["lane_km"] = level.road_km, level.lane_km
    if car_parc is not None and zones.level == "city":
        cols.update({
            "car_parc_registered": [car_parc.value], "car_parc_source": [car_parc.source],
            "car_parc_year": [car_parc.year], "car_parc_note": [car_parc.note],
            "car_parc_illustrative": [car_parc.illustrative],
        })
    utc, local = _local_times(quality)
    cols.update({
        "valid_fraction": level.valid, "acquired_at_utc": [utc] * n, "acquired_at_local": [local] * n,
        "sensor": [quality.sensor] * n, "gsd_m": [quality.gsd_m] * n, "model": [quality.model] * n,
        "vehicles_withheld": np.asarray(withheld_privacy, dtype=bool) & capabilities.vehicles,
        "figures_withheld": low_valid,
        "notes": ["; ".join(x) for x in notes],
    })
    return make_frame(cols, zones.geometry, crs, n)


def aggregate(
    buildings: gpd.GeoDataFrame,
    vehicles: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame,
    aoi: shapely.Polygon,
    crs: object,
    *,
    quality: SceneQuality,
    rates: DetectorRates,
    car_parc: CarParc | None,
    h3_resolution: int = 9,
    min_vehicles_per_cell: int = 10,
    districts: gpd.GeoDataFrame | None = None,
    valid: ValidCoverage | None = None,
    capabilities: Capabilities,
    city: str = "city",
    min_valid_fraction: float = 0.5,
    n_draws: int = N_DRAWS,
    seed: int = SEED,
) -> Indicators:
    """Indicators per city, district (when ``districts`` is given) and H3 cell.

    Args:
        buildings: footprints with ``height_m`` (the ``buildings.parquet`` schema).
        vehicles: oriented boxes with ``class``, ``on_road``, ``moving``.
        roads: centreline segments (LineStrings) or carriageway polygons with ``lanes``.
        aoi: the area mapped, in ``crs``.
        crs: the scene CRS (projected, metres); every input must be in it.
        quality: acquisition time, sensor, GSD, model and overall valid fraction.
        rates: measured detector rates (model cards) behind the intervals.
        car_parc: registered vehicles from the catalog (city level), or None.
        h3_resolution: H3 resolution of the cell table (9: cells of about 0.1 km2).
        min_vehicles_per_cell: zones with fewer vehicles publish no vehicle figures.
        districts: polygons with a ``district`` name, or None.
        valid: valid-pixel mask or polygon for ``valid_fraction`` per zone.
        capabilities: what the imagery supports; anything else is null.
        city: the city's name, written in every row.
        min_valid_fraction: zones seen less than this publish no image figures.
        n_draws, seed: Monte Carlo draws and seed of the intervals.
    """
    crs = CRS.from_user_input(crs)
    if not crs.is_projected:
        raise InvalidValueError("crs", crs.to_string(), "a projected CRS in metres (the scene's UTM zone)")
    if not 0 <= h3_resolution <= 15:
        raise InvalidValueError("h3_resolution", h3_resolution, "an integer from 0 to 15")
    if not 0.0 <= min_valid_fraction <= 1.0:
        raise InvalidValueError("min_valid_fraction", min_valid_fraction, "a number in [0, 1]")
    if min_vehicles_per_cell < 0:
        raise InvalidValueError("min_vehicles_per_cell", min_vehicles_per_cell, "0 or more")
    aoi = shapely.make_valid(aoi)
    if aoi.is_empty or aoi.area <= 0:
        raise InvalidValueError("aoi", "empty polygon", "a polygon with area")
    _check_frame(buildings, "buildings", crs, ("geometry",) + (("height_m",) if capabilities.heights else ()))
    _check_frame(vehicles, "vehicles", crs, ("geometry", "class", "on_road", "moving"))
    _check_frame(roads, "roads", crs, ("geometry", "lanes"))

    b_frame, b_centres = _inside(buildings, aoi)
    v_frame, v_centres = _inside(vehicles, aoi)
    roads = roads[~roads.geometry.is_empty] if len(roads) else roads
    notes: list[str] = []
    if len(roads) and roads["lanes"].isna().any():
        notes.append(f"{int(roads['lanes'].isna().sum())} road pieces without a lane count were taken as 1 lane")
        roads = roads.assign(lanes=roads["lanes"].fillna(1))
    strata = _strata(v_frame["class"].astype(str).to_numpy() if len(v_frame) else np.zeros(0, dtype=object))
    sampler = RateSampler(seed=seed, n_draws=n_draws)
    parc_value = float(car_parc.value) if car_parc is not None else np.nan

    zone_sets = {
        "city": city_zones(aoi, city),
        "h3": h3_zones(aoi, crs, h3_resolution, np.concatenate([b_centres, v_centres])),
    }
    if districts is not None:
        zone_sets["district"] = district_zones(districts, aoi, crs)
    levels = {
        name: _measure_level(
            zones, b_frame, b_centres, v_frame, v_centres, roads, strata, crs=crs, h3_resolution=h3_resolution,
            rates=rates, sampler=sampler, valid=valid, default_valid=quality.valid_fraction,
            parc_value=parc_value if name == "city" else np.nan,
        )
        for name, zones in zone_sets.items()
    }
    low_valid = {name: ~(level.valid >= min_valid_fraction) for name, level in levels.items()}
    if capabilities.vehicles:
        withheld = _suppress(levels, min_vehicles_per_cell, low_valid)
    else:
        withheld = {name: np.zeros(len(level.zones), dtype=bool) for name, level in levels.items()}
    privacy_withheld = {
        name: withheld[name] & ~(low_valid[name] & ~privacy.primary(levels[name].vehicles_total, min_vehicles_per_cell))
        for name in levels
    }
    frames = {
        name: _frame(
            level, city=city, crs=crs, capabilities=capabilities, quality=quality, car_parc=car_parc,
            withheld_privacy=privacy_withheld[name], min_valid_fraction=min_valid_fraction,
        )
        for name, level in levels.items()
    }

    if not (capabilities.buildings_as_objects and capabilities.heights and capabilities.vehicles and capabilities.moving):
        notes.append(f"not supported by the imagery, so null: {capabilities.reason or 'see capabilities'}")
    notes.extend(rates.notes)
    if rates.buildings is None and capabilities.buildings_as_objects:
        notes.append("no measured building rates: building_count has no estimate or interval")
    missing = sorted({s.vehicle_class for s in strata if rates.vehicle_rate(s.vehicle_class, s.contexts) is None})
    if missing and capabilities.vehicles:
        notes.append(f"no measured vehicle rates for {', '.join(missing)}: vehicle counts have no estimate or interval")
    without_height = int(levels["city"].buildings["buildings_without_height"][0])
    if without_height and capabilities.heights:
        notes.append(f"{without_height} buildings without a height are left out of heights, volume and floor area")
    for name, level in levels.items():
        n_privacy = int(privacy_withheld[name].sum())
        n_low = int(low_valid[name].sum())
        if n_privacy and capabilities.vehicles and name != "city":
            notes.append(f"{name}: vehicle figures withheld in {n_privacy} of {len(level.zones)} zones "
                         f"(fewer than {min_vehicles_per_cell} vehicles, or to protect such a zone)")
        if n_low:
            notes.append(f"{name}: {n_low} zones seen less than {min_valid_fraction:g} publish no image figures")
    if privacy_withheld["city"][0] and capabilities.vehicles:
        notes.append("city vehicle figures withheld for privacy")
    for note in notes:
        log.info("aggregate: %s", note)
    return Indicators(
        city=frames["city"], h3=frames["h3"], district=frames.get("district"), h3_resolution=h3_resolution,
        notes=tuple(notes),
    )
