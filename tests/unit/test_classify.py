"""On-road versus parked: each rule of baseline.classify on hand-placed vehicles."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from pyproj import CRS

from baseline.classify import classify_vehicles
from baseline.core.geo import compass_to_vector
from baseline.errors import CRSMismatchError
from tests.factories import road_map_context

CRS35 = CRS.from_epsg(32635)


def _car(x: float, y: float, heading: float, moving: bool = False) -> shapely.Polygon:
    e, n = compass_to_vector(heading)
    half_l, half_w = 2.25, 0.9
    corners = [(x + a * half_l * e + b * half_w * n, y + a * half_l * n - b * half_w * e)
               for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    return shapely.Polygon(corners)


CASES = [
    # x, y, heading, moving, expected on_road, expected context
    (50, 1.6, 90, True, True, "road"),     # driving in its lane
    (50, -1.6, 270, False, True, "road"),  # queued, aligned: on the road, not moving
    (50, 0.0, 0, False, False, "road"),    # stopped across the road: taken as parked
    (50, 4.4, 90, False, False, "kerb"),   # kerbside parking
    (50, 4.4, 90, True, True, "kerb"),     # moving in a kerb strip: on the road
    (30, 30, 0, False, False, "car_park"),
    (80, 30, 0, False, False, "off_road"),  # a courtyard
]


@pytest.mark.parametrize(("x", "y", "heading", "moving", "on_road", "context"), CASES)
def test_rules(x, y, heading, moving, on_road, context):
    vehicles = gpd.GeoDataFrame({"heading_deg": [heading], "moving": [moving]},
                                geometry=[_car(x, y, heading)], crs=CRS35)
    out = classify_vehicles(vehicles, road_map_context())
    assert bool(out["on_road"].iloc[0]) is on_road
    assert out["context"].iloc[0] == context


def test_heading_tolerance_is_configurable():
    vehicles = gpd.GeoDataFrame({"heading_deg": [130.0], "moving": [False]}, geometry=[_car(50, 1.6, 130)], crs=CRS35)
    assert not classify_vehicles(vehicles, road_map_context(), max_heading_difference_deg=30)["on_road"].iloc[0]
    assert classify_vehicles(vehicles, road_map_context(), max_heading_difference_deg=45)["on_road"].iloc[0]


def test_crs_mismatch_names_both():
    vehicles = gpd.GeoDataFrame({"heading_deg": [0.0], "moving": [False]}, geometry=[_car(0, 0, 0)], crs=4326)
    with pytest.raises(CRSMismatchError, match="EPSG:4326.*EPSG:32635"):
        classify_vehicles(vehicles, road_map_context())


def test_empty_input():
    vehicles = gpd.GeoDataFrame({"heading_deg": [], "moving": []}, geometry=[], crs=CRS35)
    out = classify_vehicles(vehicles, road_map_context())
    assert len(out) == 0 and "on_road" in out.columns
