"""Local archives: folders of GeoTIFF, COG or JP2 rasters, described by STAC Items, vendor metadata or names.

:class:`ArchiveSource` finds, in a folder and its immediate subfolders:

a. single-asset STAC Items (``assets.image``): opened as :func:`open_scene` does;
b. multi-asset STAC Items, one raster per band (Sentinel-2 L2A ``B02``..``B08``/``SCL``
   or ``blue``..``nir``/``scl``; Landsat Collection 2 Level-2 ``SR_B2``..``SR_B5``/
   ``QA_PIXEL`` or ``blue``..``nir08``/``qa_pixel``);
c. rasters beside Maxar/DigitalGlobe ``.IMD`` or ``.XML`` metadata (:mod:`baseline.ingest.vendor`);
d. bare rasters named as a standard product (``LC08_L1TP_224078_20200518_...``,
   ``S2B_..._20210926...``) or described by the ``describe`` argument.

Preprocess reads every band of a scene from ONE raster, so each scene of kind
b, c or d is a small GDAL VRT written into a cache folder: the band rasters
stacked on the grid of the finest band (class bands resampled nearest,
reflectance bilinear), each band with a no-data value (the file's own, else
0 for reflectance; 0 for SCL, 1 for QA_PIXEL fill). The Scene's valid mask
is "in-image": True where any reflectance band holds data, so a file with
no declared no-data but zeros outside its footprint (a clipped crop) is
masked there. Band names are the common names ``blue``,
``green``, ``red``, ``nir`` (plus ``scl`` or ``qa_pixel``, and e.g.
``swir16`` for other bands of a bare file, in file order).

Scale and offset: a Scene carries one ``scale`` and no offset. When every
reflectance band has offset 0 and one scale, the pixels pass through and the
Scene gets that scale. Otherwise (Landsat C2 L2: 2.75e-5 and -0.2; Sentinel-2
processing baseline 04.00 on: 1e-4 and -0.1) the VRT rewrites each band as
uint16 counts of 1e-4 reflectance, ``DN * scale / 1e-4 + offset / 1e-4``,
with GDAL's ``ScaleRatio``/``ScaleOffset`` (applied on read, unlike a band's
``<Scale>``/``<Offset>`` metadata), the source's no-data kept as 0 and a
valid pixel whose reflectance is 0 or below stored as 1 (so validity never
depends on darkness), as staged remote scenes are.

Level-1 Landsat (``L1TP``...) is digital numbers, not reflectance: such scenes
get sensor ``landsat-l1`` and scale 1 unless ``describe`` gives a scale.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from baseline.core.atomic import write_text_atomic
from baseline.core.hashing import sha256_file
from baseline.core.scene import (
    SENSOR_LANDSAT,
    SENSOR_LANDSAT_L1,
    SENSOR_S2,
    SENSOR_S2_L1C,
    SENSOR_VHR,
    Scene,
)
from baseline.errors import ConfigError, InputFileError, OutputError, SceneError
from baseline.ingest.local import _lazy, _parse_time, open_scene
from baseline.ingest.vendor import VendorMetadata, read_vendor_metadata
from baseline.synth.solar import solar_position

log = logging.getLogger(__name__)

KNOWN_SENSORS = (SENSOR_VHR, SENSOR_S2, SENSOR_S2_L1C, SENSOR_LANDSAT, SENSOR_LANDSAT_L1)

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".ntf")
REFLECTANCE = ("blue", "green", "red", "nir")
CLASS_NODATA = {"scl": 0, "qa_pixel": 1}  # SCL 0 = no data; QA_PIXEL 1 = fill bit alone
COUNT_SCALE = 1e-4  # reflectance of one count when the VRT rescales
UINT16_MAX = 65535
CACHE_DIRNAME = ".citybaseline-vrt"

# band ids to common names, per family; Landsat ids depend on the instrument
S2_IDS = {"b01": "coastal", "b02": "blue", "b03": "green", "b04": "red", "b05": "rededge1", "b06": "rededge2",
          "b07": "rededge3", "b08": "nir", "b8a": "nir08", "b09": "nir09", "b10": "cirrus", "b11": "swir16",
          "b12": "swir22", "scl": "scl"}
OLI_IDS = {"b1": "coastal", "b2": "blue", "b3": "green", "b4": "red", "b5": "nir", "b6": "swir16", "b7": "swir22",
           "b8": "pan", "b9": "cirrus", "b10": "lwir11", "b11": "lwir12", "qa_pixel": "qa_pixel"}
TM_IDS = {"b1": "blue", "b2": "green", "b3": "red", "b4": "nir", "b5": "swir16", "b6": "lwir", "b7": "swir22",
          "b8": "pan", "qa_pixel": "qa_pixel"}
COMMON_NAMES = {"coastal", "blue", "green", "yellow", "red", "rededge", "rededge1", "rededge2", "rededge3", "nir",
                "nir08", "nir09", "nir2", "cirrus", "swir16", "swir22", "pan", "lwir", "lwir11", "lwir12", "scl",
                "qa_pixel"}

# (local mean solar time of the descending node in hours, inclination in degrees) of each mission's orbit
ORBITS = {"S2": (10.5, 98.62), "LC08": (10.2, 98.2), "LC09": (10.2, 98.2), "LO08": (10.2, 98.2),
          "LE07": (10.0, 98.2), "LT05": (9.75, 98.2), "LT04": (9.75, 98.2)}

LANDSAT_NAME = re.compile(r"^(L[COTEM]0[4-9])_(L1TP|L1GT|L1GS|L2SP|L2SR)_(\d{6})_(\d{8})(?:_|$)")
S2_NAME = re.compile(r"^(S2[ABC])_(?:.*?_)?(\d{8})(?:T(\d{6}))?(?:_|$)")
BAND_TOKEN = re.compile(r"^[Bb](\d{1,2}|8[Aa])(?![A-Za-z])")
BAND_RUN = re.compile(r"(?:^|_)((?:B\d{1,2}A?[_-]?){2,})(?:_|$)")
DESCRIBE_KEYS = {"sensor", "bands", "datetime", "sun_elevation", "sun_azimuth", "off_nadir", "scale", "offset",
                 "crs", "id", "band_time_offsets_s", "mission"}


# --- what one scene is made of ---


@dataclass(frozen=True)
class Layer:
    """One band of the stack: which file and band it comes from and how its values become reflectance."""

    name: str
    path: Path
    band: int = 1
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None

    @property
    def is_class(self) -> bool:
        return self.name in CLASS_NODATA


@dataclass
class Plan:
    """Everything a Scene needs besides its pixels, gathered from an Item, vendor file, name or ``describe``."""

    scene_id: str
    sensor: str
    layers: list[Layer]
    acquired_at: datetime | None = None
    time_exact: bool = True
    mission: str | None = None
    sun: tuple[float, float] | None = None
    off_nadir_deg: float = 0.0
    band_time_offsets_s: dict[str, float] = field(default_factory=dict)
    gsd_m: float | None = None
    crs: CRS | None = None
    origin: Path | None = None


@dataclass(frozen=True)
class RasterInfo:
    """The georeference and layout of one raster file."""

    path: Path
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    nodata: tuple[float | None, ...]
    descriptions: tuple[str | None, ...]


def inspect_raster(path: Path) -> RasterInfo:
    """Open ``path`` once for its metadata; a typed error naming it when it is not a readable raster."""
    if not path.is_file():
        raise InputFileError(path, "raster not found")
    try:
        with rasterio.open(path) as src:
            crs = CRS.from_user_input(src.crs.to_wkt()) if src.crs else None
            return RasterInfo(path, crs, Affine(*src.transform[:6]), src.width, src.height, src.count,
                              tuple(src.dtypes), tuple(src.nodatavals), tuple(src.descriptions))
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(path, f"not a readable GeoTIFF/JP2 ({exc})",
                             hint="copy it again, or remove it from the archive folder") from None


# --- sun, nominal overpass times, product names ---


def scene_centre_lonlat(crs: CRS, transform: Affine, width: int, height: int) -> tuple[float, float]:
    """(lon, lat) in degrees of the raster's centre."""
    x, y = transform @ (width / 2.0, height / 2.0)
    lon, lat = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True).transform(x, y)
    return float(lon), float(lat)


def nominal_overpass(day: date, lon: float, lat: float, mission: str) -> datetime:
    """UTC instant a sun-synchronous mission nominally passes over (lon, lat) on ``day``, descending.

    The orbit crosses the equator at a fixed local mean solar time (10:30 for
    Sentinel-2, about 10:11 for Landsat 8/9); at latitude ``lat`` the local time
    differs by the right-ascension change along the orbit, ``atan2(cos i sin u,
    cos u)`` at argument of latitude ``u`` (about +1 h at 60 N). Accurate to
    some minutes: enough for a sun position when a file gives only a date.
    """
    node_hours, inclination = ORBITS[mission]
    inc = math.radians(inclination)
    sin_u = max(-1.0, min(1.0, math.sin(math.radians(lat)) / math.sin(inc)))
    u = math.pi - math.asin(sin_u)  # the descending half of the orbit
    d_alpha = math.atan2(math.cos(inc) * math.sin(u), math.cos(u)) - math.pi
    d_alpha = (d_alpha + math.pi) % (2 * math.pi) - math.pi
    utc_hours = node_hours + math.degrees(d_alpha) / 15.0 - lon / 15.0
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=utc_hours)


@dataclass(frozen=True)
class ProductName:
    """What a standard product name says: mission, sensor, date and (Sentinel-2 only) time of day."""

    mission: str
    sensor: str
    day: date
    acquired_at: datetime | None


def parse_product_name(stem: str) -> ProductName | None:
    """Landsat product ids (``LC08_L1TP_224078_20200518_...``) and Sentinel-2 names (``S2B_..._20210926[T095029]``)."""
    if m := LANDSAT_NAME.match(stem):
        level = m.group(2)
        sensor = SENSOR_LANDSAT_L1 if level.startswith("L1") else SENSOR_LANDSAT
        day = _date(m.group(4))
        return None if day is None else ProductName(m.group(1), sensor, day, None)
    if m := S2_NAME.match(stem):
        day = _date(m.group(2))
        if day is None:
            return None
        when = None
        if m.group(3):
            hh, mm, ss = int(m.group(3)[:2]), int(m.group(3)[2:4]), int(m.group(3)[4:])
            when = datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC)
        sensor = SENSOR_S2_L1C if "MSIL1C" in stem.upper() else SENSOR_S2
        return ProductName("S2", sensor, day, when)
    return None


def _date(text: str) -> date | None:
    """``YYYYMMDD`` as a date, None when it is not one."""
    try:
        return datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        return None


def common_band_name(token: str, family: str | None, mission: str | None) -> str | None:
    """A band id or name (``B04``, ``B2_blue``, ``SR_B5``, ``nir08``) as the common name stages use."""
    text = token.strip()
    low = text.lower()
    if low.startswith("sr_"):
        low, text = low[3:], text[3:]
    match = BAND_TOKEN.match(text)
    if match:
        band = "b" + match.group(1).lower()
        if family == "s2":
            return S2_IDS.get(band if band == "b8a" else f"b{int(band[1:]):02d}")
        if family == "landsat" and mission:
            table = OLI_IDS if mission in ("LC08", "LC09", "LO08") else TM_IDS
            return table.get(f"b{int(band[1:])}" if band != "b8a" else band)
        return None
    if low in COMMON_NAMES:
        return "nir" if (low == "nir08" and family == "landsat") else low
    return None


def _family(sensor: str) -> str | None:
    """``s2``, ``landsat`` or None (very high resolution) for a sensor string."""
    if sensor.startswith("sentinel-2"):
        return "s2"
    if sensor.startswith("landsat"):
        return "landsat"
    return None


def default_scale_offset(sensor: str) -> tuple[float, float]:
    """Reflectance = DN * scale + offset where the metadata does not say (USGS and ESA conventions)."""
    if sensor == SENSOR_LANDSAT:
        return 2.75e-5, -0.2  # Collection 2 Level-2 surface reflectance
    if sensor == SENSOR_LANDSAT_L1:
        return 1.0, 0.0  # digital numbers: no reflectance without the MTL calibration
    return COUNT_SCALE, 0.0


# --- the VRT ---

GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "float32": "Float32", "float64": "Float64"}


def _fmt(value: float) -> str:
    """A number as GDAL reads it back exactly."""
    return repr(float(value))


def _check_grid(layers: list[Layer], infos: dict[Path, RasterInfo], crs: CRS) -> None:
    """Every layer north-up in ``crs`` (the VRT stacks; it does not reproject)."""
    for layer in layers:
        info = infos[layer.path]
        if info.transform.b or info.transform.d:
            raise SceneError(f"{layer.path}: the raster is rotated", hint="warp it north-up first (gdalwarp)")
        if info.crs is not None and info.crs != crs and layer.path != layers[0].path:
            raise SceneError(
                f"{layer.path}: CRS {info.crs.to_string()} differs from the other bands' {crs.to_string()}",
                hint="the archive source stacks bands of one CRS; warp them to one first",
            )


def _band_xml(index: int, layer: Layer, info: RasterInfo, grid: Affine, dtype: str, rescale: bool) -> tuple[str, float]:
    """One ``VRTRasterBand`` (where the layer sits on the grid, how its values are read) and its no-data value."""
    st = info.transform
    x_off, y_off = (st.c - grid.c) / grid.a + 0.0, (st.f - grid.f) / grid.e + 0.0
    x_size, y_size = info.width * st.a / grid.a, info.height * st.e / grid.e
    src_nodata = info.nodata[layer.band - 1] if layer.nodata is None else layer.nodata
    resampling = "nearest" if layer.is_class else "bilinear"
    rects = (
        f'<SrcRect xOff="0" yOff="0" xSize="{info.width}" ySize="{info.height}"/>'
        f'<DstRect xOff="{_fmt(x_off)}" yOff="{_fmt(y_off)}" xSize="{_fmt(x_size)}" ySize="{_fmt(y_size)}"/>'
    )
    source = (f"<SourceFilename relativeToVRT=\"0\">{escape(str(layer.path))}</SourceFilename>"
              f"<SourceBand>{layer.band}</SourceBand>{rects}")
    if layer.is_class:
        nodata = CLASS_NODATA[layer.name]
        body = f"<SimpleSource resampling=\"nearest\">{source}</SimpleSource>"
    elif rescale:
        nodata = 0
        ratio, shift = layer.scale / COUNT_SCALE, layer.offset / COUNT_SCALE
        src_nd = 0 if src_nodata is None else src_nodata
        body = (f"<ComplexSource resampling=\"{resampling}\">{source}<NODATA>{_fmt(src_nd)}</NODATA>"
                f"<ScaleOffset>{_fmt(shift)}</ScaleOffset><ScaleRatio>{_fmt(ratio)}</ScaleRatio>"
                f"<LUT>1:1,{UINT16_MAX}:{UINT16_MAX}</LUT></ComplexSource>")
    else:
        nodata = 0 if src_nodata is None else src_nodata
        body = f"<SimpleSource resampling=\"{resampling}\">{source}</SimpleSource>"
    xml = (f'<VRTRasterBand dataType="{dtype}" band="{index}"><Description>{escape(layer.name)}</Description>'
           f"<NoDataValue>{_fmt(nodata)}</NoDataValue>{body}</VRTRasterBand>")
    return xml, float(nodata)


def stack_vrt_text(
    layers: list[Layer], infos: dict[Path, RasterInfo], crs: CRS
) -> tuple[str, float, list[float]]:
    """The VRT stacking ``layers`` on the finest layer's grid, the Scene scale of its values, each band's no-data.

    Rescales to counts of :data:`COUNT_SCALE` when a reflectance band has an
    offset or the bands' scales differ; otherwise passes values through.
    """
    _check_grid(layers, infos, crs)
    finest = min(layers, key=lambda lay: abs(infos[lay.path].transform.a))
    grid_info = infos[finest.path]
    grid = grid_info.transform
    refl = [lay for lay in layers if not lay.is_class]
    scales = {lay.scale for lay in refl}
    rescale = any(lay.offset != 0.0 for lay in refl) or len(scales) > 1
    if rescale:
        dtype, scale = "UInt16", COUNT_SCALE
    else:
        kinds = [infos[lay.path].dtypes[lay.band - 1] for lay in layers]  # class values must fit too
        dtype = GDAL_TYPES.get(str(np.result_type(*kinds)), "Float64")
        scale = scales.pop() if scales else 1.0
    parts = [_band_xml(i, lay, infos[lay.path], grid, dtype, rescale) for i, lay in enumerate(layers, 1)]
    bands = "".join(xml for xml, _ in parts)
    text = (
        f'<VRTDataset rasterXSize="{grid_info.width}" rasterYSize="{grid_info.height}">'
        f"<SRS>{escape(crs.to_wkt())}</SRS>"
        f"<GeoTransform>{', '.join(_fmt(v) for v in (grid.c, grid.a, grid.b, grid.f, grid.d, grid.e))}</GeoTransform>"
        f"{bands}</VRTDataset>\n"
    )
    return text, scale, [nodata for _, nodata in parts]


def write_stack_vrt(text: str, target: Path) -> None:
    """Write the VRT atomically, only when its text changed (readers may hold the old one open)."""
    try:
        if target.is_file() and target.read_text() == text:
            return
    except OSError:
        pass
    try:
        write_text_atomic(target, text)
    except (OutputError, OSError) as exc:
        raise OutputError(f"cannot write the band stack {target}: {exc}",
                          hint="pass cache_dir= a writable folder (the archive may be read-only)") from None


# --- the source ---


def _safe(name: str) -> str:
    """``name`` as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "scene"


def _is_raster(path: Path) -> bool:
    return path.suffix.lower() in RASTER_SUFFIXES


class ArchiveSource:
    """Scenes from a local archive folder (see the module docstring for what it accepts).

    Args:
        folder: the archive; files in it and in its immediate subfolders are read.
        sensors: keep only scenes of these sensors (None: all).
        describe: ``{file name or glob: description}`` for rasters that carry
            no usable metadata; a description has ``sensor``, ``bands`` (file
            order), ``datetime`` (ISO 8601 with zone, or a date for a nominal
            overpass time), and optionally ``sun_elevation``/``sun_azimuth``,
            ``off_nadir``, ``scale``, ``offset``, ``crs``, ``id``,
            ``band_time_offsets_s`` and ``mission`` (``S2``, ``LC08``, ``LE07``...).
            It also overrides what a standard name says.
        cache_dir: where the band-stack VRTs go (default ``<folder>/.citybaseline-vrt``).
    """

    name = "archive"

    def __init__(
        self,
        folder: str | Path,
        *,
        sensors: tuple[str, ...] | list[str] | None = None,
        describe: dict | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.sensors = tuple(sensors) if sensors is not None else None
        self.describe = _check_describe(describe or {})
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.folder / CACHE_DIRNAME

    # -- discovery --

    def _files(self) -> list[Path]:
        """Files of the folder and its immediate subfolders, hidden ones and the cache skipped."""
        out = []
        for entry in sorted(self.folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_file():
                out.append(entry)
            elif entry.is_dir() and entry.resolve() != self.cache_dir.resolve():
                out.extend(p for p in sorted(entry.iterdir()) if p.is_file() and not p.name.startswith("."))
        return out

    def _wanted(self, sensor: str) -> bool:
        return self.sensors is None or sensor in self.sensors

    def scenes(self) -> list[Scene]:
        """Every scene of the archive whose sensor is wanted, sorted by id."""
        if not self.folder.is_dir():
            raise InputFileError(self.folder, "archive folder not found")
        files = self._files()
        claimed: set[Path] = set()
        found: list[tuple[Scene, Path]] = []
        for path in files:
            if path.suffix.lower() == ".json":
                item = _load_item(path)
                if item is not None:
                    claimed |= _item_rasters(path, item)
                    scene = self._item_scene(path, item)
                    if scene is not None:
                        found.append((scene, path))
        used_keys: set[str] = set()
        rasters = {p.resolve(): p for p in files if _is_raster(p)}
        for path in files:
            if path.suffix.lower() not in (".imd", ".xml") or path.name.lower().endswith(".aux.xml"):
                continue
            meta = read_vendor_metadata(path)
            if meta is None:
                continue
            raster = _vendor_raster(path, rasters)
            claimed.add(raster.resolve())
            entry, key = self._description(raster)
            used_keys |= {key} if key else set()
            scene = self._build(_vendor_plan(raster, meta, entry))
            if scene is not None:
                found.append((scene, path))
        for resolved, path in rasters.items():
            if resolved in claimed:
                continue
            entry, key = self._description(path)
            used_keys |= {key} if key else set()
            plan = _bare_plan(path, entry)
            if plan is None:
                log.debug("archive: %s has no Item, vendor metadata, product name or description: skipped", path)
                continue
            scene = self._build(plan)
            if scene is not None:
                found.append((scene, path))
        unused = set(self.describe) - used_keys
        if unused:
            raise ConfigError(f"describe names {', '.join(sorted(unused))} but no such raster is in {self.folder}",
                              hint="keys are file names (or globs) relative to the archive folder")
        return _checked(found, self.folder)

    def _description(self, raster: Path) -> tuple[dict | None, str | None]:
        """The ``describe`` entry for ``raster`` (by relative path, name or glob) and its key."""
        rel = raster.relative_to(self.folder).as_posix() if raster.is_relative_to(self.folder) else raster.name
        for key, entry in self.describe.items():
            if key in (rel, raster.name) or fnmatch.fnmatch(rel, key) or fnmatch.fnmatch(raster.name, key):
                return entry, key
        return None, None

    # -- building --

    def _item_scene(self, item_path: Path, item: dict) -> Scene | None:
        """A Scene from a STAC Item: single-asset as :func:`open_scene`, multi-asset stacked."""
        assets = item.get("assets") or {}
        if not any(isinstance(a, dict) and _is_raster_asset(a) for a in assets.values()):
            log.debug("archive: %s has no raster assets: skipped", item_path)
            return None
        if "image" in assets:
            sensor = item.get("properties", {}).get("citybaseline:sensor", SENSOR_VHR)
            return open_scene(item_path) if self._wanted(sensor) else None
        return self._build(_item_plan(item_path, item))

    def _build(self, plan: Plan) -> Scene | None:
        """The plan's VRT written and opened as a lazy Scene (None when its sensor is not wanted)."""
        if not self._wanted(plan.sensor):
            return None
        infos = {lay.path: inspect_raster(lay.path) for lay in plan.layers}
        first = infos[plan.layers[0].path]
        crs = plan.crs or first.crs
        if crs is None:
            raise SceneError(f"{first.path}: the raster has no CRS",
                             hint="write the projection into the file, or give describe={..: {'crs': ...}}")
        text, scale, nodata = stack_vrt_text(plan.layers, infos, crs)
        target = self.cache_dir / f"{_safe(plan.scene_id)}.vrt"
        write_stack_vrt(text, target)
        sources = [infos[p] for p in dict.fromkeys(lay.path for lay in plan.layers)]
        return _scene_from_vrt(target, text, plan, scale, nodata, sources)


def _checked(found: list[tuple[Scene, Path]], folder: Path) -> list[Scene]:
    """The scenes sorted by id; an error when ids repeat or nothing was found."""
    seen: dict[str, Path] = {}
    for scene, origin in found:
        if scene.scene_id in seen:
            raise SceneError(f"{origin} and {seen[scene.scene_id]} are both scene {scene.scene_id!r}",
                             hint="give one a distinct id (STAC id, or describe 'id')")
        seen[scene.scene_id] = origin
    if not found:
        raise InputFileError(
            folder, "no scenes found (STAC Items, vendor .IMD/.XML, standard product names or described rasters)",
            hint="name files as products (S2B_..._YYYYMMDD..., LC08_L1TP_...) or pass describe={file: {...}}",
        )
    return sorted((s for s, _ in found), key=lambda s: s.scene_id)


def _in_image(data: da.Array, layers: list[Layer], nodata: list[float]) -> da.Array:
    """True where any reflectance band holds data (not its no-data value, not NaN).

    Class bands do not count: an SCL or QA value under a reflectance hole is
    still a hole (GDAL's dataset mask would OR every band, class bands too).
    """
    wanted = [i for i, lay in enumerate(layers) if not lay.is_class] or list(range(len(layers)))
    valid = None
    for i in wanted:
        band = data[i]
        here = ~da.isnan(band) if math.isnan(nodata[i]) else band != nodata[i]
        if np.issubdtype(band.dtype, np.floating) and not math.isnan(nodata[i]):
            here &= ~da.isnan(band)
        valid = here if valid is None else valid | here
    return valid


def _scene_from_vrt(
    vrt: Path, text: str, plan: Plan, scale: float, nodata: list[float], infos: list[RasterInfo]
) -> Scene:
    """Open the written VRT as a lazy Scene with the plan's metadata."""
    with rasterio.open(vrt) as src:
        crs, transform = CRS.from_user_input(src.crs.to_wkt()), Affine(*src.transform[:6])
        rows, cols, count, dtype = src.height, src.width, src.count, src.dtypes[0]
    acquired_at = plan.acquired_at
    assert acquired_at is not None  # every plan sets it
    sun = plan.sun
    if sun is None:
        lon, lat = scene_centre_lonlat(crs, transform, cols, rows)
        pos = solar_position(acquired_at, lon, lat)
        sun = (pos.elevation_deg, pos.azimuth_deg)
        how = "the file's acquisition time" if plan.time_exact else "a NOMINAL overpass time (the file gives only a date)"
        (log.info if plan.time_exact else log.warning)(
            "archive: %s: sun %.1f/%.1f deg computed at the scene centre from %s (%s)",
            plan.scene_id, sun[0], sun[1], how, acquired_at.isoformat())
    bands = tuple(lay.name for lay in plan.layers)
    ys = transform.f + transform.e * (np.arange(rows) + 0.5)
    xs = transform.c + transform.a * (np.arange(cols) + 0.5)
    pixels = _lazy(vrt, count, rows, cols, dtype, mask=False)
    data = xr.DataArray(pixels, dims=("band", "y", "x"), coords={"band": list(bands), "y": ys, "x": xs},
                        name=plan.scene_id)
    valid = xr.DataArray(_in_image(pixels, plan.layers, nodata), dims=("y", "x"), coords={"y": ys, "x": xs})
    digest = hashlib.sha256(text.encode())
    for info in infos:
        digest.update(sha256_file(info.path).encode())
    return Scene(
        scene_id=plan.scene_id,
        sensor=plan.sensor,
        data=data,
        valid=valid,
        crs=crs,
        transform=transform,
        gsd_m=float(plan.gsd_m or (abs(transform.a) + abs(transform.e)) / 2.0),
        bands=bands,
        acquired_at=acquired_at,
        sun_elevation_deg=float(sun[0]),
        sun_azimuth_deg=float(sun[1]),
        off_nadir_deg=float(plan.off_nadir_deg),
        band_time_offsets_s=dict(plan.band_time_offsets_s),
        scale=float(scale),
        href=vrt,
        checksum=digest.hexdigest(),
    )


# --- STAC Items ---


def _load_item(path: Path) -> dict | None:
    """The JSON at ``path`` when it is a STAC Item (a Feature with assets), else None."""
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    if isinstance(doc, dict) and doc.get("type") == "Feature" and isinstance(doc.get("assets"), dict):
        return doc
    return None


def _asset_path(item_path: Path, key: str, asset: dict) -> Path:
    """The local file an asset's href names (relative to the Item); remote hrefs are refused."""
    href = str(asset.get("href", ""))
    if not href:
        raise SceneError(f"{item_path}: asset {key!r} has no href")
    if href.startswith("file://"):
        href = href[len("file://"):]
    if re.match(r"^[a-z][a-z0-9+.-]*://", href):
        raise SceneError(f"{item_path}: asset {key!r} is remote ({href.split('?')[0]})",
                         hint="the archive source reads local files: download the assets or use the STAC source")
    return (item_path.parent / href).resolve()


def _is_raster_asset(asset: dict) -> bool:
    href = str(asset.get("href", "")).split("?")[0].lower()
    kind = str(asset.get("type", "")).lower()
    return href.endswith(RASTER_SUFFIXES) or "image/tiff" in kind or "image/jp2" in kind


def _item_rasters(item_path: Path, item: dict) -> set[Path]:
    """Local files of an Item's raster assets (so they are not also read as bare rasters)."""
    out = set()
    for key, asset in item["assets"].items():
        if isinstance(asset, dict) and _is_raster_asset(asset):
            try:
                out.add(_asset_path(item_path, key, asset))
            except SceneError:
                continue
    return out


def _item_family(item: dict) -> tuple[str, str | None]:
    """(``s2`` or ``landsat``, Landsat mission like ``LC08``) of a multi-asset Item."""
    props = item.get("properties", {})
    ident = str(item.get("id", ""))
    text = " ".join(str(props.get(k, "")) for k in ("platform", "constellation")).lower()
    text += " " + str(item.get("collection", "")).lower()
    keys = {k.lower() for k in item["assets"]}
    if "sentinel-2" in text or re.match(r"^S2[ABC]_", ident) or keys & {"scl", "b02", "b03", "b04", "b08"}:
        return "s2", None
    mission = None
    if m := re.match(r"^(L[COTEM]0\d)_", ident):
        mission = m.group(1)
    elif m := re.search(r"landsat-(\d)", text):
        mission = {"4": "LT04", "5": "LT05", "7": "LE07", "8": "LC08", "9": "LC09"}.get(m.group(1))
    if "landsat" in text or mission or "qa_pixel" in keys or any(k.startswith("sr_b") for k in keys):
        return "landsat", mission
    raise SceneError(f"item {ident!r}: neither Sentinel-2 nor Landsat",
                     hint="set properties.platform, or give it a single 'image' asset with eo:bands")


def _asset_band(key: str, asset: dict, family: str, mission: str | None) -> str | None:
    """The common name of a one-band asset: its ``eo:bands`` common_name, else its key."""
    eo = asset.get("eo:bands") or asset.get("bands") or []
    if len(eo) == 1 and isinstance(eo[0], dict):
        cn = eo[0].get("common_name") or eo[0].get("eo:common_name")
        if cn:
            return str(cn).lower()
    low = key.lower()
    if low in ("scl", "qa_pixel") or low in COMMON_NAMES:
        return low
    if family == "landsat" and low.startswith("sr_b") and mission is None:
        return None
    return common_band_name(key, family, mission)


def _raster_band_meta(asset: dict) -> dict:
    """The asset's first ``raster:bands`` entry (STAC raster v1) or ``bands`` entry (STAC 1.1)."""
    for key in ("raster:bands", "bands"):
        entries = asset.get(key) or []
        if entries and isinstance(entries[0], dict):
            entry = entries[0]
            return {
                "scale": entry.get("scale", entry.get("raster:scale")),
                "offset": entry.get("offset", entry.get("raster:offset")),
                "nodata": entry.get("nodata", asset.get("nodata")),
            }
    return {"scale": None, "offset": None, "nodata": asset.get("nodata")}


def _item_sensor(item: dict, family: str) -> str:
    props = item.get("properties", {})
    if "citybaseline:sensor" in props:
        return str(props["citybaseline:sensor"])
    if family == "s2":
        level = str(props.get("s2:product_type", "")) + str(item.get("id", ""))
        return SENSOR_S2_L1C if "L1C" in level.upper() else SENSOR_S2
    level = str(props.get("landsat:correction", "")) + " " + str(item.get("id", ""))
    return SENSOR_LANDSAT_L1 if re.search(r"(^|[ _])L1(TP|GT|GS)", level) else SENSOR_LANDSAT


def _s2_default_offset(props: dict) -> float:
    """-0.1 from processing baseline 04.00 (January 2022) on, where the Item has no raster:bands offset."""
    baseline = str(props.get("s2:processing_baseline", ""))
    try:
        return -0.1 if baseline and float(baseline) >= 4.0 else 0.0
    except ValueError:
        return 0.0


def _item_layers(item_path: Path, item: dict, family: str, mission: str | None, sensor: str) -> list[Layer]:
    """One layer per wanted band (blue, green, red, nir, then the class band), each an asset of the Item."""
    candidates: dict[str, tuple[str, dict]] = {}
    for key, asset in item["assets"].items():
        if isinstance(asset, dict) and _is_raster_asset(asset):
            name = _asset_band(key, asset, family, mission)
            if name and name not in candidates:
                candidates[name] = (key, asset)
    if "nir" not in candidates and "nir08" in candidates and family == "landsat":
        candidates["nir"] = candidates["nir08"]
    missing = [b for b in REFLECTANCE if b not in candidates]
    if missing:
        raise SceneError(
            f"{item_path}: no asset for band(s) {', '.join(missing)}",
            hint=f"assets present: {', '.join(item['assets'])}; expected keys like B02..B08/blue..nir "
                 "(Sentinel-2) or SR_B2..SR_B5/blue..nir08 (Landsat)",
        )
    class_band = "scl" if family == "s2" else "qa_pixel"
    wanted = [*REFLECTANCE, *([class_band] if class_band in candidates else [])]
    default_scale, default_offset = default_scale_offset(sensor)
    if family == "s2" and sensor == SENSOR_S2:
        default_offset = _s2_default_offset(item.get("properties", {}))
    layers = []
    for name in wanted:
        key, asset = candidates[name]
        path = _asset_path(item_path, key, asset)
        if not path.is_file():
            raise InputFileError(path, f"asset {key!r} of {item_path.name} is missing",
                                 hint="copy the band file beside the Item, or fix its href")
        meta = _raster_band_meta(asset)
        if name in CLASS_NODATA:
            layers.append(Layer(name, path))
            continue
        scale = float(meta["scale"]) if meta["scale"] is not None else default_scale
        offset = float(meta["offset"]) if meta["offset"] is not None else default_offset
        nodata = float(meta["nodata"]) if meta["nodata"] is not None else None
        layers.append(Layer(name, path, 1, scale, offset, nodata))
    return layers


def _item_plan(item_path: Path, item: dict) -> Plan:
    """A Plan for a multi-asset Item (one raster per band)."""
    props = item.get("properties", {})
    family, mission = _item_family(item)
    sensor = _item_sensor(item, family)
    layers = _item_layers(item_path, item, family, mission, sensor)
    sun = None
    if "view:sun_elevation" in props and "view:sun_azimuth" in props:
        sun = (float(props["view:sun_elevation"]), float(props["view:sun_azimuth"]))
    elif "s2:mean_solar_zenith" in props and "s2:mean_solar_azimuth" in props:
        sun = (90.0 - float(props["s2:mean_solar_zenith"]), float(props["s2:mean_solar_azimuth"]))
    offsets = {common_band_name(k, family, mission) or k: float(v)
               for k, v in props.get("citybaseline:band_time_offsets_s", {}).items()}
    return Plan(
        scene_id=str(item.get("id", item_path.stem)),
        sensor=sensor,
        layers=layers,
        acquired_at=_parse_time(item, item_path),
        sun=sun,
        off_nadir_deg=float(props.get("view:off_nadir", 0.0)),
        band_time_offsets_s=offsets,
        gsd_m=float(props["gsd"]) if "gsd" in props else None,
        origin=item_path,
    )


# --- vendor metadata ---


def _vendor_raster(meta_path: Path, rasters: dict[Path, Path]) -> Path:
    """The raster beside a vendor metadata file: same stem, any raster suffix and case."""
    stem = meta_path.stem.lower()
    for path in rasters.values():
        if path.parent == meta_path.parent and path.stem.lower() == stem:
            return path
    raise InputFileError(meta_path, "vendor metadata without its image",
                         hint=f"expected {meta_path.stem}.TIF (or .tif/.jp2/.NTF) beside it")


def _vendor_plan(raster: Path, meta: VendorMetadata, entry: dict | None) -> Plan:
    """A Plan for a raster described by an ``.IMD``/``.XML``: sensor ``vhr``, bands from its BAND_x groups."""
    info = inspect_raster(raster)
    if info.count != len(meta.bands):
        raise SceneError(f"{meta.path}: {len(meta.bands)} BAND groups ({', '.join(meta.bands)}) "
                         f"but {raster.name} has {info.count} bands",
                         hint="each image needs the metadata file delivered with it")
    sun = None
    if meta.sun_elevation_deg is not None and meta.sun_azimuth_deg is not None:
        sun = (meta.sun_elevation_deg, meta.sun_azimuth_deg)
    entry = entry or {}
    if "scale" not in entry:
        log.warning("archive: %s: vendor metadata gives no reflectance scale; 1e-4 assumed (a reflectance "
                    "product); raw counts need calibration (absCalFactor/effectiveBandwidth) first", raster.name)
    scale, offset = float(entry.get("scale", COUNT_SCALE)), float(entry.get("offset", 0.0))
    plan = Plan(
        scene_id=raster.stem,
        sensor=SENSOR_VHR,
        layers=[Layer(name, raster, i, scale, offset) for i, name in enumerate(meta.bands, 1)],
        acquired_at=meta.acquired_at,
        sun=sun,
        off_nadir_deg=meta.off_nadir_deg,
        band_time_offsets_s=dict(meta.band_time_offsets_s),
        origin=meta.path,
    )
    return _apply_description(plan, entry, raster, info) if entry else plan


# --- bare rasters: product names and describe ---


def _check_describe(describe: dict) -> dict:
    """``describe`` with its entries checked: dicts of known keys."""
    if not isinstance(describe, dict):
        raise ConfigError("describe must be a mapping of file name to description")
    for key, entry in describe.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"describe[{key!r}] must be a mapping (sensor, bands, datetime...)")
        unknown = set(entry) - DESCRIBE_KEYS
        if unknown:
            raise ConfigError(f"describe[{key!r}] has unknown key(s) {', '.join(sorted(unknown))}",
                              hint=f"known: {', '.join(sorted(DESCRIBE_KEYS))}")
        if "sensor" in entry and entry["sensor"] not in KNOWN_SENSORS:
            raise ConfigError(f"describe[{key!r}]: sensor {entry['sensor']!r} is not known",
                              hint=f"one of {', '.join(KNOWN_SENSORS)}")
        if ("sun_elevation" in entry) != ("sun_azimuth" in entry):
            raise ConfigError(f"describe[{key!r}]: give both sun_elevation and sun_azimuth, or neither")
    return dict(describe)


def _bands_from_file(info: RasterInfo, family: str | None, mission: str | None) -> list[str] | None:
    """Band names from the file itself: its band descriptions, else a ``B2B3B4`` run in its name."""
    if all(info.descriptions):
        names = [common_band_name(d or "", family, mission) for d in info.descriptions]
        if all(names):
            return [str(n) for n in names]
    if m := BAND_RUN.search(info.path.stem):
        tokens = re.findall(r"B\d{1,2}A?", m.group(1))
        names = [common_band_name(t, family, mission) for t in tokens]
        if len(names) == info.count and all(names):
            return [str(n) for n in names]
    if family == "s2" and info.count == 4:
        log.warning("archive: %s: no band names in the file; assumed B02 B03 B04 B08 (blue green red nir)",
                    info.path.name)
        return list(REFLECTANCE)
    return None


def _parse_describe_time(value: object, where: str) -> tuple[datetime | None, date | None]:
    """A describe ``datetime``: an aware instant, or a date alone (then a nominal overpass time is used)."""
    text = str(value).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return None, date.fromisoformat(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{where}: datetime {text!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise ConfigError(f"{where}: datetime {text!r} has no time zone", hint="write it in UTC with a trailing Z")
    return when, None


def _bare_plan(path: Path, entry: dict | None) -> Plan | None:
    """A Plan for a raster with a standard product name and/or a ``describe`` entry; None for neither."""
    name = parse_product_name(path.stem)
    if name is None and entry is None:
        return None
    info = inspect_raster(path)
    entry = entry or {}
    sensor = str(entry.get("sensor") or (name.sensor if name else ""))
    if not sensor:
        raise ConfigError(f"describe[{path.name!r}] needs 'sensor'", hint=f"one of {', '.join(KNOWN_SENSORS)}")
    family = _family(sensor)
    mission = entry.get("mission") or (name.mission if name else ("S2" if family == "s2" else None))
    if "bands" in entry:
        bands = [common_band_name(str(b), family, mission) or str(b).lower() for b in entry["bands"]]
    else:
        bands = _bands_from_file(info, family, mission)
    if not bands:
        raise SceneError(f"{path}: the file does not say which band is which",
                         hint=f"pass describe={{{path.name!r}: {{'bands': [...file order...], ...}}}}")
    if len(bands) != info.count:
        raise SceneError(f"{path}: {len(bands)} band names given ({', '.join(bands)}) but the file has {info.count}")
    scale, offset = default_scale_offset(sensor)
    if sensor == SENSOR_LANDSAT_L1 and "scale" not in entry:
        log.warning("archive: %s: Landsat Level-1 digital numbers, not reflectance (scale 1)", path.name)
    if sensor == SENSOR_S2 and name is not None and name.day >= date(2022, 1, 25) and "offset" not in entry:
        log.warning("archive: %s: products from processing baseline 04.00 (25 Jan 2022) on carry a -0.1 "
                    "offset; none applied (pass describe offset=-0.1 if the file still has it)", path.name)
    plan = Plan(
        scene_id=path.stem,
        sensor=sensor,
        layers=[Layer(b, path, i, scale, offset) for i, b in enumerate(bands, 1)],
        mission=mission,
        origin=path,
    )
    if name is not None:
        plan.acquired_at = name.acquired_at
        plan.time_exact = name.acquired_at is not None
        if name.acquired_at is None:
            plan.acquired_at = _nominal(name.day, mission, info, path)
    return _apply_description(plan, entry, path, info)


def _nominal(day: date, mission: str | None, info: RasterInfo, path: Path) -> datetime:
    """The nominal overpass instant of ``mission`` over the raster's centre on ``day``."""
    if mission not in ORBITS:
        raise ConfigError(f"{path}: only a date is known and mission {mission!r} has no nominal overpass time",
                          hint="give describe a full 'datetime' with time of day and zone")
    if info.crs is None:
        raise SceneError(f"{path}: the raster has no CRS", hint="give describe 'crs'")
    lon, lat = scene_centre_lonlat(info.crs, info.transform, info.width, info.height)
    when = nominal_overpass(day, lon, lat, mission)
    log.warning("archive: %s: only the date is known; nominal %s overpass time %s UTC used",
                path.name, mission, when.strftime("%H:%M"))
    return when


def _check_crs_override(info: RasterInfo, crs: CRS, path: Path) -> None:
    """Refuse a describe ``crs`` that moves the raster's centre by a metre or more (it relabels, never warps)."""
    if info.crs is None or info.crs == crs:
        return
    x, y = info.transform @ (info.width / 2.0, info.height / 2.0)
    x2, y2 = Transformer.from_crs(info.crs, crs, always_xy=True).transform(x, y)
    if not (math.isfinite(x2) and math.isfinite(y2)) or math.hypot(x2 - x, y2 - y) >= 1.0:
        raise ConfigError(f"{path}: describe crs {crs.to_string()} is not the file's CRS relabelled "
                          f"(the centre would move {math.hypot(x2 - x, y2 - y):.1f} m)",
                          hint="describe 'crs' only names the file's own projection; warp the file to change it")


def _apply_description(plan: Plan, entry: dict, path: Path, info: RasterInfo) -> Plan:
    """``describe`` fields over what the name or metadata said."""
    where = f"describe[{path.name!r}]"
    if "datetime" in entry:
        when, day = _parse_describe_time(entry["datetime"], where)
        plan.acquired_at, plan.time_exact = (when, True) if when else (_nominal(day, plan.mission, info, path), False)
    if plan.acquired_at is None:
        raise ConfigError(f"{where} needs 'datetime'", hint="the acquisition instant in UTC, e.g. 2021-09-26T09:50:29Z")
    if "sun_elevation" in entry:
        plan.sun = (float(entry["sun_elevation"]), float(entry["sun_azimuth"]))
    if "crs" in entry:
        crs = CRS.from_user_input(entry["crs"])
        _check_crs_override(info, crs, path)
        plan.crs = crs
    if "scale" in entry or "offset" in entry:
        scale, offset = float(entry.get("scale", plan.layers[0].scale)), float(entry.get("offset", 0.0))
        plan.layers = [lay if lay.is_class else replace(lay, scale=scale, offset=offset) for lay in plan.layers]
    plan.scene_id = str(entry.get("id", plan.scene_id))
    plan.off_nadir_deg = float(entry.get("off_nadir", plan.off_nadir_deg))
    if "band_time_offsets_s" in entry:
        plan.band_time_offsets_s = {str(k): float(v) for k, v in entry["band_time_offsets_s"].items()}
    return plan
