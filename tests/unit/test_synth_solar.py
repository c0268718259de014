"""The sun position module against published reference values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from baseline.errors import InvalidValueError
from baseline.synth.solar import julian_day, solar_position


def test_matches_the_nrel_spa_reference_example():
    # Reda & Andreas (2004), NREL/TP-560-34302, Table A5.1: Golden, Colorado,
    # 2003-10-17 12:30:30 local (UTC-7): zenith 50.11162 deg, azimuth 194.34024 deg.
    when = datetime(2003, 10, 17, 12, 30, 30, tzinfo=timezone(timedelta(hours=-7)))
    sun = solar_position(when, -105.1786, 39.742476)
    assert 90.0 - sun.elevation_deg == pytest.approx(50.11162, abs=0.02)
    assert sun.azimuth_deg == pytest.approx(194.34024, abs=0.02)


def test_julian_day_of_j2000():
    assert julian_day(datetime(2000, 1, 1, 12, tzinfo=UTC)) == pytest.approx(2451545.0)


def test_helsinki_default_acquisition_is_a_high_sun_from_the_south_east():
    sun = solar_position(datetime(2024, 6, 14, 9, 30, tzinfo=UTC), 24.94, 60.17)
    # near the solstice the noon sun stands at 90 - 60.17 + 23.3 = 53.1 deg; 09:30 UTC is 50 min before noon
    assert 51.0 < sun.elevation_deg < 53.2
    assert 150.0 < sun.azimuth_deg < 170.0
    assert sun.declination_deg == pytest.approx(23.29, abs=0.05)


def test_azimuth_swings_from_east_to_west_through_south():
    day = datetime(2024, 3, 20, tzinfo=UTC)
    morning = solar_position(day + timedelta(hours=6, minutes=30), 24.94, 60.17)
    # solar noon: 12:00 - 4 min per degree of longitude - equation of time (-7.5 min) = 10:27:30 UTC
    noon = solar_position(day + timedelta(hours=10, minutes=27, seconds=30), 24.94, 60.17)
    evening = solar_position(day + timedelta(hours=14), 24.94, 60.17)
    assert morning.azimuth_deg < noon.azimuth_deg < evening.azimuth_deg
    assert noon.azimuth_deg == pytest.approx(180.0, abs=0.5)
    # equinox noon: elevation = 90 - latitude (plus refraction)
    assert noon.elevation_deg == pytest.approx(90.0 - 60.17, abs=0.5)


def test_night_is_below_the_horizon_and_naive_times_are_refused():
    assert solar_position(datetime(2024, 12, 14, 22, tzinfo=UTC), 24.94, 60.17).elevation_deg < 0
    with pytest.raises(InvalidValueError):
        solar_position(datetime(2024, 6, 14, 9, 30), 24.94, 60.17)
