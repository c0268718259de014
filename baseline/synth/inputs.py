"""What the renderer draws from: a city's OSM map, or a footprints file, in UTM.

The OSM extract of a known city gives buildings, roads, kerbs, car parks,
vegetation and water (:mod:`baseline.context.osm`). A footprints file given by
the user (GeoJSON, GeoPackage, GeoParquet, in any CRS, with an optional height
column) replaces the OSM buildings; the scene is then those footprints' extent
plus a margin wide enough for their shadows, with whatever OSM map context
overlaps it (none outside the city's extract: buildings on open paved ground).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from baseline.context.osm import MapContext, helsinki_pbf, load_osm_context
from baseline.core.geo import utm_crs_for
from baseline.core.geoparquet import read_vector
from baseline.errors import InputFileError, MissingColumnError, RenderError, UnknownCityError
from baseline.synth.osm_extras import load_extras
from baseline.synth.params import HEIGHT_COLUMNS, RenderParams
from baseline.synth.solar import solar_position

CITIES: dict[str, Callable[[], Path]] = {"helsinki": helsinki_pbf}
"""Cities the renderer can draw, each with the OSM extract that maps it."""

FILE_MARGIN_M = 25.0
"""Ground drawn around a footprints file's extent, beyond the longest shadow."""

_CONTEXT_FRAMES = ("road_segments", "carriageways", "kerb_strips", "car_parks", "vegetation", "water")


@dataclass(frozen=True)
class SceneInputs:
    """The map a scene is drawn from, projected to the local UTM zone.

    Attributes:
        crs: the UTM CRS of every frame.
        aoi: polygon of in-image ground (the valid-data area).
        centre_lonlat: scene centre, for the sun position.
        sun_elevation_deg, sun_azimuth_deg: the sun, given or computed.
        sun_source: ``"given"`` or ``"computed"``.
        buildings: footprints with ``kind`` (OSM building tag),
            ``height_m`` (NaN if unknown), ``levels`` (NaN if unknown) and
            ``known_origin`` (``osm_height`` or ``file`` where ``height_m`` is known).
        context: the OSM frames (road segments, carriageways, kerb strips, car
            parks, vegetation, water) that lie in the scene; may be empty.
        extras: geometry arrays ``sea``, ``rails``, ``trams``, ``platforms``
            (:mod:`~baseline.synth.osm_extras`) in the scene.
        source: a short description of where the map came from.
    """

    crs: CRS
    aoi: shapely.Polygon
    centre_lonlat: tuple[float, float]
    sun_elevation_deg: float
    sun_azimuth_deg: float
    sun_source: str
    buildings: gpd.GeoDataFrame
    context: dict[str, gpd.GeoDataFrame]
    extras: dict[str, np.ndarray]
    source: str


def city_pbf(city: str) -> Path:
    """The OSM extract of ``city``; :class:`UnknownCityError` if the renderer does not know it."""
    try:
        return CITIES[city.lower()]()
    except KeyError:
        raise UnknownCityError(city, CITIES) from None


def load_inputs(params: RenderParams) -> SceneInputs:
    """Load and project the map ``params`` asks for, and settle the sun position."""
    pbf = city_pbf(params.city)
    if params.buildings_path is not None:
        footprints = read_footprints(params.buildings_path, params.height_column)
        return _file_inputs(params, footprints, pbf)
    ctx = load_osm_context(pbf)
    buildings = ctx.buildings.rename(columns={"building": "kind"}).drop(columns="osm_id")
    buildings["known_origin"] = np.where(buildings["height_m"].notna(), "osm_height", "")
    elev, az, how = _sun(params, ctx.aoi, ctx.crs)
    return SceneInputs(
        crs=ctx.crs, aoi=ctx.aoi, centre_lonlat=_lonlat(ctx.aoi, ctx.crs),
        sun_elevation_deg=elev, sun_azimuth_deg=az, sun_source=how,
        buildings=buildings, context={k: getattr(ctx, k) for k in _CONTEXT_FRAMES},
        extras=_extras(pbf, ctx, ctx.crs, ctx.aoi), source=f"OpenStreetMap extract {pbf.name}",
    )


def read_footprints(path: Path, height_column: str | None) -> gpd.GeoDataFrame:
    """Polygons of a footprints file with ``height_m`` (NaN where missing), in the file's CRS.

    Raises:
        InputFileError: unreadable, no CRS, or no polygons.
        MissingColumnError: ``height_column`` named but absent.
    """
    frame = read_vector(path)
    if frame.crs is None:
        raise InputFileError(path, "the footprints have no CRS", hint="save the file with its CRS (e.g. EPSG:3879)")
    frame = frame[frame.geometry.notna()]
    frame = frame[frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise InputFileError(path, "no polygon footprints in the file", hint="give building outlines as polygons")
    if height_column is not None and height_column not in frame.columns:
        raise MissingColumnError(path, height_column, [c for c in frame.columns if c != "geometry"])
    column = height_column or next((c for c in HEIGHT_COLUMNS if c in frame.columns), None)
    heights = pd.to_numeric(frame[column], errors="coerce") if column else pd.Series(np.nan, index=frame.index)
    heights = heights.where(heights > 0)
    out = gpd.GeoDataFrame(
        {"height_m": heights.to_numpy(dtype=float)},
        geometry=shapely.make_valid(frame.geometry.values), crs=frame.crs,
    )
    out = out.explode(index_parts=False).reset_index(drop=True)
    return out[out.geom_type == "Polygon"].reset_index(drop=True)


def _file_inputs(params: RenderParams, footprints: gpd.GeoDataFrame, pbf: Path) -> SceneInputs:
    lon0, lat0, lon1, lat1 = footprints.to_crs(4326).total_bounds
    crs = utm_crs_for((lon0 + lon1) / 2, (lat0 + lat1) / 2)
    b = footprints.to_crs(crs)
    b = b[b.geometry.area > 1.0].reset_index(drop=True)
    b["kind"] = "yes"
    b["levels"] = np.nan
    b["known_origin"] = np.where(b["height_m"].notna(), "file", "")
    core = shapely.box(*b.total_bounds)
    elev, az, how = _sun(params, core, crs)
    tallest = float(np.nanmax(b["height_m"].to_numpy())) if b["height_m"].notna().any() else 40.0
    reach = min(tallest / math.tan(math.radians(elev)), 300.0)
    aoi = shapely.box(*core.buffer(FILE_MARGIN_M + reach, join_style="mitre").bounds)

    ctx = load_osm_context(pbf)
    context: dict[str, gpd.GeoDataFrame] = {}
    for name in _CONTEXT_FRAMES:
        frame = getattr(ctx, name)
        context[name] = frame if ctx.crs == crs else frame.to_crs(crs)
    # carriageway i is segment i buffered: keep or drop them together, so their rows stay aligned
    roads = (context["road_segments"].intersects(aoi) | context["carriageways"].intersects(aoi)).to_numpy()
    for name in _CONTEXT_FRAMES:
        keep = roads if name in ("road_segments", "carriageways") else context[name].intersects(aoi).to_numpy()
        context[name] = context[name][keep].reset_index(drop=True)
    return SceneInputs(
        crs=crs, aoi=aoi, centre_lonlat=_lonlat(core, crs),
        sun_elevation_deg=elev, sun_azimuth_deg=az, sun_source=how,
        buildings=b, context=context, extras=_extras(pbf, ctx, crs, aoi), source=f"footprints {params.buildings_path}",
    )


def _extras(pbf: Path, ctx: MapContext, crs: CRS, aoi: shapely.Geometry) -> dict[str, np.ndarray]:
    """Sea, railways, tram rails and platforms of the city's extract that fall in ``aoi``."""
    extras = load_extras(pbf, ctx.crs, ctx.aoi)
    out = {}
    for name in ("sea", "rails", "trams", "platforms"):
        geoms = getattr(extras, name)
        if len(geoms) and ctx.crs != crs:
            geoms = gpd.GeoSeries(geoms, crs=ctx.crs).to_crs(crs).values
        out[name] = np.asarray(geoms)[shapely.intersects(geoms, aoi)] if len(geoms) else np.asarray(geoms)
    return out


def _lonlat(geom: shapely.Geometry, crs: CRS) -> tuple[float, float]:
    c = gpd.GeoSeries([geom.centroid], crs=crs).to_crs(4326).iloc[0]
    return float(c.x), float(c.y)


def _sun(params: RenderParams, area: shapely.Geometry, crs: CRS) -> tuple[float, float, str]:
    """The sun as given, or computed at ``area``'s centre for ``params.time``."""
    lon, lat = _lonlat(area, crs)
    computed = solar_position(params.time, lon, lat)
    elev = params.sun_elevation_deg
    az = params.sun_azimuth_deg
    how = "given" if elev is not None and az is not None else "computed"
    if elev is None:
        elev = computed.elevation_deg
        if elev <= 1.0:
            raise RenderError(
                f"the sun is {elev:.1f} degrees above the horizon at {params.time.isoformat()} there",
                hint="choose a daytime --time or give --sun-elevation",
            )
    return float(elev), float(az if az is not None else computed.azimuth_deg), how
