"""From the config's ``scene`` section to the one :class:`ImagerySource` a run reads.

``local`` (the demo) and ``archive`` read folders; ``stac`` and
``sentinelhub`` fetch the city's area from a remote service and stage it in
``scene.path`` (see :mod:`baseline.ingest.staging`). Every source yields
:class:`baseline.core.scene.Scene` objects, so what comes after ingest does
not know where the pixels came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyproj import CRS

from baseline.core.geo import utm_crs_for
from baseline.errors import ConfigError
from baseline.ingest.base import ImagerySource


@dataclass(frozen=True)
class AreaOfInterest:
    """Where to fetch: a lon/lat box (west may exceed east across the antimeridian) and the city's UTM CRS."""

    west: float
    south: float
    east: float
    north: float
    crs: CRS
    timezone: str

    @property
    def crosses_antimeridian(self) -> bool:
        return self.west > self.east

    @property
    def centre(self) -> tuple[float, float]:
        """(lon, lat) of the box's centre, in -180..180."""
        east = self.east + 360.0 if self.crosses_antimeridian else self.east
        lon = (self.west + east) / 2.0
        return (lon - 360.0 if lon > 180.0 else lon), (self.south + self.north) / 2.0

    def bbox(self) -> tuple[float, float, float, float]:
        return self.west, self.south, self.east, self.north


def area_of_interest(bbox: tuple[float, float, float, float], timezone: str, crs: CRS | None = None) -> AreaOfInterest:
    """Check a [west, south, east, north] box and pair it with the UTM zone of its centre."""
    west, south, east, north = (float(v) for v in bbox)
    if not (-90 <= south < north <= 90):
        raise ConfigError(f"scene.aoi: south {south} must be below north {north}, both within -90..90")
    if not (-180 <= west <= 180 and -180 <= east <= 180) or west == east:
        raise ConfigError(
            f"scene.aoi: west {west} and east {east} must differ and lie within -180..180",
            hint="across the antimeridian give west > east, e.g. [179.8, -17.0, -179.8, -16.6]",
        )
    aoi = AreaOfInterest(west, south, east, north, CRS.from_epsg(4326), timezone)
    lon, lat = aoi.centre
    return AreaOfInterest(west, south, east, north, crs or utm_crs_for(lon, lat), timezone)


def open_source(spec: object, *, folder: Path, aoi: AreaOfInterest | None, show_progress: bool = True) -> ImagerySource:
    """The source the config's ``scene`` section names (``spec`` is a SceneSpec)."""
    kind = spec.source  # type: ignore[attr-defined]
    if kind == "local":
        from baseline.ingest.local import LocalFilesSource

        return LocalFilesSource(folder)
    if kind == "archive":
        from baseline.ingest.archive import ArchiveSource

        return ArchiveSource(folder)
    if aoi is None:
        raise ConfigError(
            f"scene.source {kind!r} needs an area to fetch",
            hint="set scene.aoi: [west, south, east, north], or give the city an aoi in data_catalog/cities/",
        )
    if kind == "stac":
        from baseline.ingest.stac import StacSource

        return StacSource(spec, folder=folder, aoi=aoi, show_progress=show_progress)
    if kind == "sentinelhub":
        from baseline.ingest.sentinelhub import SentinelHubSource

        return SentinelHubSource(spec, folder=folder, aoi=aoi, show_progress=show_progress)
    raise ConfigError(f"scene.source {kind!r} is not known", hint="use local, archive, stac or sentinelhub")
