"""What a render is asked to draw: :class:`RenderParams`, validated on creation.

Every option of ``baseline synth`` is a field here, so the renderer can be run
the same way from Python (tests, training) as from the command line. Bad values
raise :class:`~baseline.errors.InvalidValueError` naming the value and what is
allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from baseline.errors import InvalidValueError

DEFAULT_TIME = datetime(2024, 6, 14, 9, 30, tzinfo=UTC)
"""A weekday late morning in June: high sun, busy streets."""

DEFAULT_GSD_M = 0.3
HEIGHT_COLUMNS = ("height_m", "height", "measured_height_m", "HEIGHT")
"""Columns looked for, in order, when a footprints file's height column is not named."""


@dataclass(frozen=True)
class HeightPrior:
    """Heights drawn for buildings whose height the map does not give: lognormal, clipped.

    The default (median 18 m, log-sd 0.3, so most between 13 and 25 m) fits
    central Helsinki's five- to seven-storey perimeter blocks.
    """

    median_m: float = 18.0
    log_sigma: float = 0.3
    min_m: float = 6.0
    max_m: float = 45.0
    storey_m: float = 3.2
    roof_allowance_m: float = 1.0

    def __post_init__(self) -> None:
        if not (0 < self.min_m <= self.median_m <= self.max_m):
            raise InvalidValueError("height prior", (self.min_m, self.median_m, self.max_m), "0 < min <= median <= max")
        if self.log_sigma < 0 or self.storey_m <= 0 or self.roof_allowance_m < 0:
            raise InvalidValueError(
                "height prior", (self.log_sigma, self.storey_m, self.roof_allowance_m),
                "log_sigma >= 0, storey_m > 0, roof_allowance_m >= 0",
            )


def parse_time(text: str) -> datetime:
    """An ISO 8601 instant as timezone-aware UTC; a naive time is taken as UTC."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidValueError("time", text, "an ISO 8601 instant such as 2024-06-14T09:30:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


@dataclass(frozen=True)
class RenderParams:
    """Parameters of one synthetic scene.

    Attributes:
        city: a city the renderer knows (its OpenStreetMap extract gives the map).
        seed: random seed; the same parameters and seed give identical pixels.
        gsd_m: ground sampling distance of the very-high-resolution image, metres.
        time: acquisition instant (UTC).
        sun_elevation_deg, sun_azimuth_deg: sun position; ``None`` computes it
            from ``time`` and the scene centre.
        clouds: fraction of the scene under cloud, 0 to 1.
        buildings_path: optional footprints file (GeoJSON, GeoPackage, GeoParquet)
            drawn instead of the OSM buildings; the scene is then their extent plus
            a margin.
        height_column: the footprints' height column; ``None`` looks for
            :data:`HEIGHT_COLUMNS`.
        bbox: optional ``(xmin, ymin, xmax, ymax)`` in the scene's UTM CRS to render
            only that part (the plan of the whole scene stays the same, so a crop
            shows exactly what the full render shows there).
        vehicles: draw vehicles (False gives the same scene without traffic).
        parking: ``"usual"`` or ``"dense"`` (kerbs and car parks nearly full, cars bumper to bumper:
            the hard case for keeping packed cars apart).
        sentinel2: also render the Sentinel-2-like image.
        sensor_noise: add the sensor's blur and noise (False for exact pixel tests).
        height_prior: how heights are drawn where the map gives none.
    """

    city: str = "helsinki"
    seed: int = 0
    gsd_m: float = DEFAULT_GSD_M
    time: datetime = DEFAULT_TIME
    sun_elevation_deg: float | None = None
    sun_azimuth_deg: float | None = None
    clouds: float = 0.0
    buildings_path: Path | None = None
    height_column: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    vehicles: bool = True
    parking: str = "usual"
    sentinel2: bool = True
    sensor_noise: bool = True
    height_prior: HeightPrior = HeightPrior()

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidValueError("seed", self.seed, "a non-negative integer")
        if not (isinstance(self.gsd_m, int | float) and math.isfinite(self.gsd_m) and self.gsd_m > 0):
            raise InvalidValueError("gsd", self.gsd_m, "a positive number of metres (e.g. 0.3)")
        if self.gsd_m > 5.0:
            raise InvalidValueError("gsd", self.gsd_m, "at most 5 m (a very-high-resolution image)")
        if not (math.isfinite(self.clouds) and 0.0 <= self.clouds <= 1.0):
            raise InvalidValueError("clouds", self.clouds, "a fraction between 0 and 1")
        if self.sun_elevation_deg is not None and not (
            math.isfinite(self.sun_elevation_deg) and 0.0 < self.sun_elevation_deg <= 90.0
        ):
            raise InvalidValueError("sun elevation", self.sun_elevation_deg, "degrees in (0, 90]")
        if self.sun_azimuth_deg is not None:
            if not math.isfinite(self.sun_azimuth_deg):
                raise InvalidValueError("sun azimuth", self.sun_azimuth_deg, "compass degrees")
            object.__setattr__(self, "sun_azimuth_deg", float(self.sun_azimuth_deg) % 360.0)
        if self.time.tzinfo is None:
            object.__setattr__(self, "time", self.time.replace(tzinfo=UTC))
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        if self.bbox is not None:
            xmin, ymin, xmax, ymax = (float(v) for v in self.bbox)
            if not (xmax > xmin and ymax > ymin):
                raise InvalidValueError("bbox", self.bbox, "xmin,ymin,xmax,ymax with xmax > xmin and ymax > ymin")
            object.__setattr__(self, "bbox", (xmin, ymin, xmax, ymax))
        if self.buildings_path is not None:
            object.__setattr__(self, "buildings_path", Path(self.buildings_path))
        if self.parking not in ("usual", "dense"):
            raise InvalidValueError("parking", self.parking, "'usual' or 'dense'")

    def describe(self) -> dict[str, object]:
        """The parameters as JSON-ready values (for ``render.json``)."""
        out = asdict(self)
        out["time"] = self.time.isoformat().replace("+00:00", "Z")
        out["buildings_path"] = None if self.buildings_path is None else str(self.buildings_path)
        out["bbox"] = None if self.bbox is None else list(self.bbox)
        return out

    def scene_stem(self) -> str:
        """Scene id stem: ``<city>-s<seed>``, plus a short hash of any non-default choice.

        The default Helsinki render with seed 7 is ``helsinki-s7``; changing the
        time, sun, clouds, GSD, crop or buildings appends 8 hex digits so two
        different scenes never share an id.
        """
        stem = f"{self.city}-s{self.seed}"
        defaults = RenderParams(city=self.city, seed=self.seed).describe()
        mine = self.describe()
        changed = {k: v for k, v in mine.items() if defaults[k] != v}
        if not changed:
            return stem
        digest = hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{stem}-{digest}"
