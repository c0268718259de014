"""Sun position from time and place (NOAA solar calculator algorithm).

The renderer needs the sun's elevation and azimuth to cast shadows when the
user gives only an acquisition time. This is the algorithm of the NOAA Global
Monitoring Laboratory's solar calculator, which follows Jean Meeus,
*Astronomical Algorithms* (1991): the sun's geometric mean longitude and
anomaly, the equation of centre, apparent longitude (nutation and aberration),
the obliquity of the ecliptic, declination and the equation of time, then the
hour angle at the site. It is accurate to about 0.01 degree for years
1800 to 2100 (Michalsky's Astronomical Almanac formula, the other common choice,
is of the same accuracy over 1950 to 2050). The elevation includes NOAA's
atmospheric refraction correction, as a camera sees it.

Angles are degrees; azimuth is compass (0 = north, clockwise) and points from
the ground to the sun, as everywhere in the project.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from baseline.errors import InvalidValueError

_J2000 = 2451545.0
_UNIX_EPOCH_JD = 2440587.5


@dataclass(frozen=True)
class SunPosition:
    """Where the sun is seen from a point at one instant.

    Attributes:
        elevation_deg: angle above the horizon, refraction included.
        azimuth_deg: compass direction from the ground to the sun.
        declination_deg: the sun's declination.
        equation_of_time_min: apparent minus mean solar time, minutes.
    """

    elevation_deg: float
    azimuth_deg: float
    declination_deg: float
    equation_of_time_min: float


def julian_day(when: datetime) -> float:
    """Julian day (UT) of a timezone-aware instant."""
    if when.tzinfo is None:
        raise InvalidValueError("time", when.isoformat(), "a timezone-aware instant (e.g. ending in Z)")
    return when.timestamp() / 86400.0 + _UNIX_EPOCH_JD


def _refraction_deg(elevation_deg: float) -> float:
    """NOAA's approximation of atmospheric refraction at a true elevation."""
    e = elevation_deg
    if e > 85.0:
        return 0.0
    te = math.tan(math.radians(e))
    if e > 5.0:
        arcsec = 58.1 / te - 0.07 / te**3 + 0.000086 / te**5
    elif e > -0.575:
        arcsec = 1735.0 + e * (-518.2 + e * (103.4 + e * (-12.79 + e * 0.711)))
    else:
        arcsec = -20.772 / te
    return arcsec / 3600.0


def solar_position(when: datetime, lon: float, lat: float) -> SunPosition:
    """Sun elevation and azimuth at ``(lon, lat)`` (degrees, WGS 84) at ``when``.

    Raises:
        InvalidValueError: ``when`` is naive, or the point is off the globe.
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise InvalidValueError("lon/lat", (lon, lat), "longitude in [-180, 180], latitude in [-90, 90]")
    jd = julian_day(when)
    jc = (jd - _J2000) / 36525.0  # Julian centuries since J2000.0

    mean_long = (280.46646 + jc * (36000.76983 + jc * 0.0003032)) % 360.0
    mean_anom = 357.52911 + jc * (35999.05029 - 0.0001537 * jc)
    ecc = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc)
    m = math.radians(mean_anom)
    centre = (
        math.sin(m) * (1.914602 - jc * (0.004817 + 0.000014 * jc))
        + math.sin(2 * m) * (0.019993 - 0.000101 * jc)
        + math.sin(3 * m) * 0.000289
    )
    true_long = mean_long + centre
    omega = math.radians(125.04 - 1934.136 * jc)
    app_long = true_long - 0.00569 - 0.00478 * math.sin(omega)
    mean_obliq = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0
    obliq = math.radians(mean_obliq + 0.00256 * math.cos(omega))
    decl = math.asin(math.sin(obliq) * math.sin(math.radians(app_long)))

    y = math.tan(obliq / 2.0) ** 2
    l0 = math.radians(mean_long)
    eot_min = 4.0 * math.degrees(
        y * math.sin(2 * l0)
        - 2 * ecc * math.sin(m)
        + 4 * ecc * y * math.sin(m) * math.cos(2 * l0)
        - 0.5 * y * y * math.sin(4 * l0)
        - 1.25 * ecc * ecc * math.sin(2 * m)
    )

    utc = when.astimezone(UTC)
    minutes = utc.hour * 60.0 + utc.minute + (utc.second + utc.microsecond / 1e6) / 60.0
    true_solar_min = (minutes + eot_min + 4.0 * lon) % 1440.0
    hour_angle = true_solar_min / 4.0 - 180.0

    phi = math.radians(lat)
    ha = math.radians(hour_angle)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_zen)))
    elevation = 90.0 - math.degrees(zen)

    denom = math.cos(phi) * math.sin(zen)
    if abs(denom) < 1e-12:  # sun at the zenith or observer at a pole
        azimuth = 180.0 if lat > math.degrees(decl) else 0.0
    else:
        cos_az = (math.sin(phi) * math.cos(zen) - math.sin(decl)) / denom
        az = math.degrees(math.acos(max(-1.0, min(1.0, cos_az))))
        azimuth = (az + 180.0) % 360.0 if hour_angle > 0 else (540.0 - az) % 360.0

    return SunPosition(
        elevation_deg=elevation + _refraction_deg(elevation),
        azimuth_deg=azimuth,
        declination_deg=math.degrees(decl),
        equation_of_time_min=eot_min,
    )
