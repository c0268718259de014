"""The small typed objects that ``aggregate`` reads and returns.

Several of them describe a run rather than the aggregate stage alone
(:class:`SceneQuality`, :class:`Capabilities`, :class:`DetectorRates`); they live
here until more than one stage needs them, then move to ``baseline.core``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine

from baseline.core.scene import (
    SENSOR_LANDSAT,
    SENSOR_LANDSAT_L1,
    SENSOR_S2,
    SENSOR_S2_L1C,
    SENSOR_VHR,
)
from baseline.errors import InvalidValueError

# Largest pixel at which cars are separate objects (DESIGN.md: VHR is 0.15 to 0.6 m).
MAX_GSD_VEHICLES_M = 0.6
# Largest pixel at which single building footprints are resolved.
MAX_GSD_BUILDINGS_M = 2.0


@dataclass(frozen=True)
class SceneQuality:
    """What a planner needs to judge the imagery behind the figures.

    Attributes:
        acquired_at_utc: acquisition instant, timezone-aware (any zone; reported in UTC).
        timezone: IANA zone of the city (``Europe/Helsinki``) for the local time.
        sensor: ``vhr``, ``sentinel-2-l2a``, ``landsat-c2-l2`` or a real sensor's name.
        gsd_m: ground sampling distance in metres.
        model: detector names and versions, e.g. ``buildings-unet@1.0+vehicles-centernet@1.0``.
        valid_fraction: share of the AOI that is in-image and cloud-free (0 to 1); used
            for every zone when no :class:`ValidCoverage` is given.
    """

    acquired_at_utc: datetime
    timezone: str
    sensor: str
    gsd_m: float
    model: str
    valid_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.acquired_at_utc.tzinfo is None or self.acquired_at_utc.utcoffset() is None:
            raise InvalidValueError(
                "acquired_at_utc", self.acquired_at_utc.isoformat(), "a timezone-aware datetime (UTC)"
            )
        if not 0.0 <= self.valid_fraction <= 1.0:
            raise InvalidValueError("valid_fraction", self.valid_fraction, "a number in [0, 1]")
        if not self.gsd_m > 0:
            raise InvalidValueError("gsd_m", self.gsd_m, "a positive number of metres")


@dataclass(frozen=True)
class MeasuredRate:
    """A detector's precision and recall as measured on an evaluation set.

    ``precision`` was measured on ``n_pred`` detections and ``recall`` on
    ``n_truth`` true objects. The evaluation counts are what make the interval
    honest: a recall of 0.9 measured on 20 cars says much less than the same
    recall measured on 20,000.
    """

    precision: float
    recall: float
    n_truth: float
    n_pred: float

    def __post_init__(self) -> None:
        for name in ("precision", "recall"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or math.isnan(value):
                raise InvalidValueError(name, value, "a number in [0, 1]")
        if self.recall == 0.0:
            raise InvalidValueError("recall", 0.0, "a recall above 0 (no true object was ever found)")
        for name in ("n_truth", "n_pred"):
            if not getattr(self, name) > 0:
                raise InvalidValueError(name, getattr(self, name), "a positive number of evaluation objects")

    @classmethod
    def from_counts(cls, tp: float, fp: float, fn: float) -> MeasuredRate:
        """From the true positives, false positives and false negatives of an evaluation."""
        if min(tp, fp, fn) < 0 or tp + fp == 0 or tp + fn == 0:
            raise InvalidValueError("tp/fp/fn", (tp, fp, fn), "non-negative counts with tp+fp > 0 and tp+fn > 0")
        return cls(tp / (tp + fp), tp / (tp + fn), float(tp + fn), float(tp + fp))

    @classmethod
    def from_precision_recall(
        cls, precision: float, recall: float, n_truth: float, n_pred: float | None = None
    ) -> MeasuredRate:
        """From rates and the number of true objects; detections inferred when not given."""
        if n_pred is None:
            n_pred = n_truth * recall / precision if precision > 0 else n_truth
        return cls(float(precision), float(recall), float(n_truth), float(n_pred))

    @property
    def tp_for_precision(self) -> float:
        """True positives among the ``n_pred`` evaluation detections."""
        return self.precision * self.n_pred

    @property
    def tp_for_recall(self) -> float:
        """True objects found among the ``n_truth`` evaluation objects."""
        return self.recall * self.n_truth


@dataclass(frozen=True)
class DetectorRates:
    """Measured rates of the detectors behind a run, read from their model cards.

    Vehicle rates are looked up most specific first: ``(class, context)``, then
    ``class``, then ``context``, then :attr:`vehicles` (all vehicles). Contexts are
    ``on_road``, ``parked``, ``moving``, ``kerb`` and ``car_park`` (a moving
    vehicle is looked up as ``moving`` first; one in a kerb strip or a car park
    as ``kerb`` or ``car_park`` before ``on_road``/``parked``). A missing rate leaves the interval
    of every count that needs it empty (NaN), never a guess.
    """

    buildings: MeasuredRate | None = None
    vehicles: MeasuredRate | None = None
    vehicle_classes: Mapping[str, MeasuredRate] = field(default_factory=dict)
    vehicle_contexts: Mapping[str, MeasuredRate] = field(default_factory=dict)
    vehicle_class_contexts: Mapping[tuple[str, str], MeasuredRate] = field(default_factory=dict)
    source: str = ""
    notes: tuple[str, ...] = ()

    def vehicle_rate(self, vehicle_class: str, contexts: tuple[str, ...]) -> MeasuredRate | None:
        """The most specific rate for ``vehicle_class`` in the first matching context."""
        for context in contexts:
            if (vehicle_class, context) in self.vehicle_class_contexts:
                return self.vehicle_class_contexts[(vehicle_class, context)]
        if vehicle_class in self.vehicle_classes:
            return self.vehicle_classes[vehicle_class]
        for context in contexts:
            if context in self.vehicle_contexts:
                return self.vehicle_contexts[context]
        return self.vehicles


@dataclass(frozen=True)
class CarParc:
    """Registered vehicles of a city, with where the figure comes from.

    ``illustrative`` is True when the figure is not a registry count for the run's
    area (rounded, or for a larger area); the report says so beside any ratio.
    ``scope`` is the area the figure covers (``city`` or ``aoi``).
    """

    value: int
    year: int
    source: str
    note: str
    illustrative: bool
    scope: str = "city"


@dataclass(frozen=True)
class Capabilities:
    """What the imagery can support; the pipeline reports nothing beyond it.

    Attributes:
        buildings_as_objects: single building footprints are resolved (count, footprint, coverage).
        heights: a height per building is measured (height statistics, volume, floor area).
        vehicles: every car is resolved as an object (all vehicle counts).
        moving: moving vehicles are told apart (``vehicles_moving``).
        reason: plain words on what the imagery cannot see, copied into the tables' notes.
    """

    buildings_as_objects: bool
    heights: bool
    vehicles: bool
    moving: bool
    reason: str = ""

    @classmethod
    def for_sensor(cls, sensor: str, gsd_m: float) -> Capabilities:
        """The honest capabilities of ``sensor`` at ``gsd_m`` (DESIGN.md, 'What each sensor can see')."""
        if sensor in (SENSOR_S2, SENSOR_S2_L1C):
            return cls(
                False, False, False, False,
                "Sentinel-2 (10 m) resolves built-up fraction, not single buildings, and only "
                "large moving vehicles, not every car: no building or vehicle counts",
            )
        if sensor in (SENSOR_LANDSAT, SENSOR_LANDSAT_L1):
            return cls(False, False, False, False,
                       "Landsat (30 m) resolves built-up fraction only: no building or vehicle counts")
        if sensor != SENSOR_VHR:
            raise InvalidValueError("sensor", sensor, f"one of {SENSOR_VHR}, {SENSOR_S2}, {SENSOR_S2_L1C}, {SENSOR_LANDSAT}, {SENSOR_LANDSAT_L1}")
        buildings = gsd_m <= MAX_GSD_BUILDINGS_M + 1e-9
        vehicles = gsd_m <= MAX_GSD_VEHICLES_M + 1e-9
        reason = ""
        if not vehicles:
            reason = f"pixels of {gsd_m:g} m are too coarse for single cars (need {MAX_GSD_VEHICLES_M} m or finer)"
        if not buildings:
            reason = f"pixels of {gsd_m:g} m are too coarse for single buildings and cars"
        return cls(buildings, buildings, vehicles, vehicles, reason)


@dataclass(frozen=True)
class ValidCoverage:
    """Where the image is usable (in-image, cloud-free), to compute ``valid_fraction`` per zone.

    Give either a boolean ``mask`` (rows, cols; True = valid) with its affine
    ``transform`` in the scene CRS, or a ``polygon`` of the valid area. Area of a
    zone outside the mask's extent counts as not valid.
    """

    mask: np.ndarray | None = None
    transform: Affine | None = None
    polygon: shapely.Geometry | None = None

    def __post_init__(self) -> None:
        raster = self.mask is not None and self.transform is not None
        if raster == (self.polygon is not None) or (self.mask is None) != (self.transform is None):
            raise InvalidValueError(
                "ValidCoverage", "mask/transform/polygon", "either mask and transform, or polygon"
            )
        if self.mask is not None and np.asarray(self.mask).ndim != 2:
            raise InvalidValueError("ValidCoverage.mask", np.asarray(self.mask).shape, "a 2-D (rows, cols) array")


@dataclass(frozen=True)
class Indicators:
    """The indicator tables of one run, in the scene CRS.

    ``city`` has one row; ``h3`` one row per H3 cell that touches the AOI;
    ``district`` one row per district, or None when no districts were given.
    Every table has the columns of :data:`baseline.aggregate.columns.INDICATOR_COLUMNS`
    in that order. ``notes`` says, in plain words, what was withheld and why.
    """

    city: gpd.GeoDataFrame
    h3: gpd.GeoDataFrame
    district: gpd.GeoDataFrame | None
    h3_resolution: int
    notes: tuple[str, ...] = ()
