"""Vendor metadata of very-high-resolution rasters: Maxar/DigitalGlobe ``.IMD`` and ``.XML``.

A WorldView, GeoEye or QuickBird product ships each image with an ``.IMD``
file (``key = value;`` lines in ``BEGIN_GROUP``/``END_GROUP`` blocks) and often
the same fields as an ``.XML`` (``<isd><IMD>...``, tag names upper-case).
Both carry what a Scene needs that the GeoTIFF does not: the acquisition
instant (``firstLineTime``), the sun (``meanSunEl``, ``meanSunAz``), the view
(``meanOffNadirViewAngle``, or ``meanSatEl`` from which it follows) and one
``BAND_x`` group per band in file order, with its radiometric calibration
(``absCalFactor``, ``effectiveBandwidth``).

Band timing: WorldView-2 and -3 sense their eight multispectral bands in two
arrays a fraction of a second apart, but the metadata gives one
``firstLineTime`` for the whole image, not a time per band. Offsets are
therefore left empty rather than invented; a product whose band groups carry
their own ``firstLineTime`` gets offsets from them.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from baseline.errors import InputFileError, SceneError

# BAND_x group suffix -> band name every stage uses
BAND_GROUPS = {
    "P": "pan", "C": "coastal", "B": "blue", "G": "green", "Y": "yellow", "R": "red",
    "RE": "rededge", "N": "nir", "N2": "nir2",
    **{f"S{i}": f"swir{i}" for i in range(1, 9)},
}
# orbit altitude (km), to turn the satellite's elevation seen from the ground into an off-nadir angle
ALTITUDE_KM = {"WV01": 496.0, "WV02": 770.0, "WV03": 617.0, "WV04": 617.0, "GE01": 681.0, "QB02": 482.0}
DEFAULT_ALTITUDE_KM = 650.0
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class VendorMetadata:
    """What a vendor metadata file says about its image.

    ``bands`` are in file order (``blue``, ``green``, ``red``, ``nir``...);
    ``abs_cal_factor`` and ``effective_bandwidth`` are per band name, so
    ``radiance_gain`` gives top-of-atmosphere radiance (W m-2 sr-1 um-1) per
    count. Sun fields are None when the file has no mean sun angles.
    """

    path: Path
    satellite: str | None
    acquired_at: datetime
    bands: tuple[str, ...]
    sun_elevation_deg: float | None
    sun_azimuth_deg: float | None
    off_nadir_deg: float
    abs_cal_factor: dict[str, float] = field(default_factory=dict)
    effective_bandwidth: dict[str, float] = field(default_factory=dict)
    band_time_offsets_s: dict[str, float] = field(default_factory=dict)

    def radiance_gain(self, band: str) -> float:
        """TOA spectral radiance of one count of ``band`` (absCalFactor / effectiveBandwidth)."""
        return self.abs_cal_factor[band] / self.effective_bandwidth[band]


def _clean(value: str) -> str:
    """A value as written, without the trailing ``;`` and surrounding quotes."""
    return value.strip().rstrip(";").strip().strip('"')


def parse_imd_text(text: str) -> dict:
    """An ``.IMD`` file as nested dicts: keys lower-case, group names upper-case, in file order.

    Parenthesised lists that span lines (``TLCList = ( ... );``) are kept as
    their raw text; nothing here needs them.
    """
    root: dict = {}
    stack = [root]
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        if not line or line == "END;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "BEGIN_GROUP":
            group: dict = {}
            stack[-1][_clean(value).upper()] = group
            stack.append(group)
        elif key == "END_GROUP":
            if len(stack) > 1:
                stack.pop()
        else:
            if value.startswith("(") and not value.rstrip().endswith(";"):
                parts = [value]
                for more in lines:  # a list over several lines ends with ");"
                    parts.append(more.strip())
                    if more.strip().endswith(";"):
                        break
                value = " ".join(parts)
            stack[-1][key.lower()] = _clean(value)
    return root


def parse_dg_xml(path: Path) -> dict | None:
    """The ``IMD`` element of a DigitalGlobe ``.XML`` as nested dicts like :func:`parse_imd_text`.

    None when the file is XML of another kind (GDAL ``.aux.xml``, a STAC or
    ISO record): only files with an ``IMD`` element are vendor metadata.
    """
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise InputFileError(path, f"not well-formed XML ({exc})") from None
    root = tree.getroot()
    imd = root if root.tag.upper() == "IMD" else root.find("IMD")
    if imd is None:
        return None

    def convert(element: ET.Element) -> dict:
        out: dict = {}
        for child in element:
            if len(child):
                out[child.tag.upper()] = convert(child)
            else:
                out[child.tag.lower()] = (child.text or "").strip()
        return out

    return convert(imd)


def _time(value: str, path: Path, key: str) -> datetime:
    """An IMD timestamp (``2016-08-03T10:16:41.123456Z``) as an aware UTC datetime."""
    text = value.strip().replace("Z", "+00:00")
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", text)
    if match:  # fromisoformat takes at most 6 fractional digits
        text = f"{match.group(1)}.{match.group(2)[:6].ljust(6, '0')}{match.group(3)}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SceneError(f"{path}: {key} = {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise SceneError(f"{path}: {key} = {value!r} has no time zone", hint="vendor times end in Z (UTC)")
    return when


def _number(group: dict, key: str, path: Path) -> float | None:
    """``group[key]`` as a float, None when absent; a typed error when it is not a number."""
    if key not in group:
        return None
    try:
        return float(group[key])
    except ValueError:
        raise SceneError(f"{path}: {key} = {group[key]!r} is not a number") from None


def _image_group(doc: dict, path: Path) -> dict:
    """The ``IMAGE_1`` (IMD) or ``IMAGE`` (XML) group: time and angles live there."""
    for name, value in doc.items():
        if isinstance(value, dict) and name.startswith("IMAGE"):
            return value
    raise SceneError(f"{path}: no IMAGE group", hint="the acquisition time and angles are read from IMAGE_1")


def off_nadir_from_sat_elevation(sat_elevation_deg: float, satellite: str | None) -> float:
    """Off-nadir angle at the satellite from its elevation seen at the ground (spherical Earth)."""
    altitude = ALTITUDE_KM.get((satellite or "").upper(), DEFAULT_ALTITUDE_KM)
    ratio = EARTH_RADIUS_KM / (EARTH_RADIUS_KM + altitude)
    return math.degrees(math.asin(ratio * math.cos(math.radians(sat_elevation_deg))))


def _bands(doc: dict, path: Path) -> list[tuple[str, dict]]:
    """(band name, group) of every ``BAND_x`` group, in file order."""
    out = []
    for name, value in doc.items():
        if not (isinstance(value, dict) and name.startswith("BAND_")):
            continue
        suffix = name[len("BAND_"):]
        if suffix not in BAND_GROUPS:
            raise SceneError(f"{path}: unknown band group {name}", hint=f"known: {', '.join(BAND_GROUPS)}")
        out.append((BAND_GROUPS[suffix], value))
    if not out:
        raise SceneError(f"{path}: no BAND_x groups", hint="the band order of the image is read from them")
    return out


def vendor_metadata(doc: dict, path: Path) -> VendorMetadata:
    """A :class:`VendorMetadata` from a parsed IMD or XML document."""
    image = _image_group(doc, path)
    time_key = next((k for k in ("firstlinetime", "earliestacqtime") if k in image), None)
    if time_key is None:
        raise SceneError(f"{path}: IMAGE group has no firstLineTime", hint="the acquisition instant is required")
    acquired_at = _time(image[time_key], path, time_key)
    satellite = image.get("satid") or None
    off_nadir = _number(image, "meanoffnadirviewangle", path)
    if off_nadir is None:
        sat_el = _number(image, "meansatel", path)
        off_nadir = off_nadir_from_sat_elevation(sat_el, satellite) if sat_el is not None else 0.0
    bands = _bands(doc, path)
    names = tuple(name for name, _ in bands)
    cal = {n: v for n, g in bands if (v := _number(g, "abscalfactor", path)) is not None}
    width = {n: v for n, g in bands if (v := _number(g, "effectivebandwidth", path)) is not None}
    band_times = {n: _time(g["firstlinetime"], path, "firstLineTime") for n, g in bands if "firstlinetime" in g}
    offsets: dict[str, float] = {}
    if len(band_times) == len(bands):  # only when every band has its own time: red is the reference
        ref = band_times.get("red", acquired_at)
        offsets = {n: (t - ref).total_seconds() for n, t in band_times.items()}
    return VendorMetadata(
        path=path,
        satellite=satellite,
        acquired_at=acquired_at,
        bands=names,
        sun_elevation_deg=_number(image, "meansunel", path),
        sun_azimuth_deg=_number(image, "meansunaz", path),
        off_nadir_deg=float(off_nadir),
        abs_cal_factor=cal,
        effective_bandwidth=width,
        band_time_offsets_s=offsets,
    )


def read_vendor_metadata(path: str | Path) -> VendorMetadata | None:
    """Parse an ``.IMD`` or DigitalGlobe ``.XML``; None for XML that is not vendor metadata."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".imd":
            doc = parse_imd_text(path.read_text(errors="replace"))
        else:
            doc = parse_dg_xml(path)
            if doc is None:
                return None
    except OSError as exc:
        raise InputFileError(path, f"cannot read ({exc.strerror})") from None
    return vendor_metadata(doc, path)
