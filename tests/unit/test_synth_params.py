"""RenderParams validation, time parsing and scene ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from baseline.errors import InvalidValueError
from baseline.synth import RenderParams, parse_time
from baseline.synth.params import HeightPrior


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"gsd_m": 0.0}, "gsd"),
        ({"gsd_m": -0.3}, "gsd"),
        ({"clouds": 1.2}, "clouds"),
        ({"clouds": -0.1}, "clouds"),
        ({"sun_elevation_deg": 0.0}, "sun elevation"),
        ({"sun_elevation_deg": 95.0}, "sun elevation"),
        ({"seed": -1}, "seed"),
        ({"bbox": (10.0, 0.0, 5.0, 1.0)}, "bbox"),
    ],
)
def test_bad_values_name_themselves_and_what_is_allowed(kwargs, name):
    with pytest.raises(InvalidValueError) as info:
        RenderParams(**kwargs)
    assert str(info.value).startswith(f"{name} = ")
    assert "expected" in str(info.value)


def test_height_prior_must_be_ordered():
    with pytest.raises(InvalidValueError):
        HeightPrior(median_m=5.0, min_m=6.0)


def test_parse_time_accepts_z_offsets_and_naive_utc():
    assert parse_time("2024-06-14T09:30:00Z") == datetime(2024, 6, 14, 9, 30, tzinfo=UTC)
    assert parse_time("2024-06-14T12:30:00+03:00") == datetime(2024, 6, 14, 9, 30, tzinfo=UTC)
    assert parse_time("2024-06-14T09:30") == datetime(2024, 6, 14, 9, 30, tzinfo=UTC)
    with pytest.raises(InvalidValueError):
        parse_time("yesterday")


def test_scene_ids_are_short_for_defaults_and_distinct_otherwise():
    assert RenderParams(seed=7).scene_stem() == "helsinki-s7"
    a = RenderParams(seed=7, clouds=0.2).scene_stem()
    b = RenderParams(seed=7, sun_elevation_deg=30.0).scene_stem()
    assert a.startswith("helsinki-s7-") and b.startswith("helsinki-s7-") and a != b
    assert RenderParams(seed=7, clouds=0.2).scene_stem() == a
