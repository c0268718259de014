"""aggregate(): hand-worked indicators, totals that add up, capabilities, validity, time, schema."""

from __future__ import annotations

from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from shapely.geometry import LineString, box

from baseline.aggregate import (
    INDICATOR_COLUMNS,
    Capabilities,
    CarParc,
    DetectorRates,
    MeasuredRate,
    SceneQuality,
    ValidCoverage,
    aggregate,
)
from baseline.errors import CRSMismatchError, InvalidValueError

CRS = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0
VHR = Capabilities.for_sensor("vhr", 0.3)
RATES = DetectorRates(
    buildings=MeasuredRate.from_counts(90, 10, 10), vehicles=MeasuredRate.from_counts(900, 100, 100)
)


def quality(when: datetime = datetime(2024, 6, 14, 5, 30, tzinfo=UTC), valid: float = 1.0) -> SceneQuality:
    return SceneQuality(when, "Europe/Helsinki", "vhr", 0.3, "buildings-unet@1.0+vehicles-centernet@1.0", valid)


def frames(n_vehicles: int = 60, seed: int = 0, size: float = 400.0):
    """A small scene: 3 hand-sized buildings, random vehicles, two roads, a square AOI."""
    rng = np.random.default_rng(seed)
    aoi = box(X0, Y0, X0 + size, Y0 + size)
    buildings = gpd.GeoDataFrame(
        {"height_m": [3.2, 6.4, 10.0]},
        geometry=[box(X0 + 10, Y0 + 10, X0 + 20, Y0 + 20), box(X0 + 50, Y0 + 50, X0 + 60, Y0 + 60),
                  box(X0 + 100, Y0 + 300, X0 + 120, Y0 + 305)],
        crs=CRS,
    )
    xy = rng.uniform([X0 + 5, Y0 + 5], [X0 + size - 5, Y0 + size - 5], (n_vehicles, 2))
    vehicles = gpd.GeoDataFrame(
        {"class": rng.choice(["car", "large"], n_vehicles, p=[0.9, 0.1]),
         "on_road": rng.random(n_vehicles) < 0.5, "moving": rng.random(n_vehicles) < 0.3},
        geometry=[box(x - 2.25, y - 0.9, x + 2.25, y + 0.9) for x, y in xy], crs=CRS,
    )
    roads = gpd.GeoDataFrame(
        {"lanes": [2, 4]},
        geometry=[LineString([(X0 - 50, Y0 + 200), (X0 + size + 50, Y0 + 200)]),
                  LineString([(X0 + 200, Y0 + 100), (X0 + 200, Y0 + 150)])],
        crs=CRS,
    )
    return buildings, vehicles, roads, aoi


def run(buildings, vehicles, roads, aoi, **kw):
    kw.setdefault("quality", quality())
    kw.setdefault("rates", RATES)
    kw.setdefault("car_parc", CarParc(240000, 2023, "registry", "illustrative", True))
    kw.setdefault("capabilities", VHR)
    kw.setdefault("n_draws", 1000)
    return aggregate(buildings, vehicles, roads, aoi, CRS, city="testville", **kw)


def test_building_figures_match_hand_computed_values():
    buildings, vehicles, roads, aoi = frames()
    city = run(buildings, vehicles, roads, aoi).city.iloc[0]
    areas = np.array([100.0, 100.0, 100.0])
    heights = np.array([3.2, 6.4, 10.0])
    assert city["building_count"] == 3
    assert city["footprint_area_m2"] == pytest.approx(300.0)
    assert city["coverage_ratio"] == pytest.approx(300.0 / 160000.0)
    assert city["height_mean_m"] == pytest.approx(heights.mean())
    assert city["height_median_m"] == pytest.approx(6.4)
    assert city["height_max_m"] == pytest.approx(10.0)
    assert city["height_p90_m"] == pytest.approx(np.percentile(heights, 90))
    assert city["built_volume_m3"] == pytest.approx((areas * heights).sum())
    # floors: 3.2 -> 1, 6.4 -> 2, 10.0 -> round(3.125) = 3
    assert city["floor_area_m2"] == pytest.approx(100 * 1 + 100 * 2 + 100 * 3)


def test_road_length_and_lane_km_are_clipped_to_the_aoi():
    buildings, vehicles, roads, aoi = frames()
    city = run(buildings, vehicles, roads, aoi).city.iloc[0]
    # 400 m of the 2-lane road lie in the AOI, 50 m of the 4-lane one
    assert city["road_length_km"] == pytest.approx(0.45)
    assert city["lane_km"] == pytest.approx(0.4 * 2 + 0.05 * 4)
    assert city["on_road_per_lane_km"] == pytest.approx(city["vehicles_on_road"] / 1.0)


def test_carriageway_polygons_are_measured_by_area_over_width():
    buildings, vehicles, _, aoi = frames()
    road = LineString([(X0 + 100, Y0 + 100), (X0 + 300, Y0 + 100)]).buffer(2 * 3.25 / 2, cap_style="flat")
    roads = gpd.GeoDataFrame({"lanes": [2]}, geometry=[road], crs=CRS)
    city = run(buildings, vehicles, roads, aoi).city.iloc[0]
    assert city["road_length_km"] == pytest.approx(0.2)
    assert city["lane_km"] == pytest.approx(0.4)


def test_h3_cells_add_up_to_the_city_when_nothing_is_withheld():
    buildings, vehicles, roads, aoi = frames(n_vehicles=300)
    ind = run(buildings, vehicles, roads, aoi, min_vehicles_per_cell=0, h3_resolution=9)
    city, cells = ind.city.iloc[0], ind.h3
    assert len(cells) > 3
    assert not cells["vehicles_withheld"].any()
    for column in ("building_count", "vehicles_total", "vehicles_on_road", "vehicles_parked", "vehicles_moving"):
        assert cells[column].sum() == city[column], column
    for column in ("footprint_area_m2", "built_volume_m3", "floor_area_m2", "road_length_km", "lane_km",
                   "zone_area_m2", "building_count_est", "vehicles_total_est"):
        assert cells[column].sum() == pytest.approx(city[column]), column
    assert city["vehicles_total"] == 300
    assert city["vehicles_on_road"] + city["vehicles_parked"] == 300


def test_objects_outside_the_aoi_are_left_out():
    buildings, vehicles, roads, aoi = frames()
    outside = gpd.GeoDataFrame({"height_m": [20.0]}, geometry=[box(X0 - 100, Y0, X0 - 90, Y0 + 10)], crs=CRS)
    city = run(pd.concat([buildings, outside]), vehicles, roads, aoi).city.iloc[0]
    assert city["building_count"] == 3


def test_columns_are_in_the_contract_order_with_stable_types():
    buildings, vehicles, roads, aoi = frames()
    districts = gpd.GeoDataFrame({"district": ["west", "east"]},
                                 geometry=[box(X0, Y0, X0 + 200, Y0 + 400), box(X0 + 200, Y0, X0 + 400, Y0 + 400)],
                                 crs=CRS)
    ind = run(buildings, vehicles, roads, aoi, districts=districts)
    for frame in (ind.city, ind.h3, ind.district):
        assert tuple(frame.columns) == INDICATOR_COLUMNS
        assert frame.crs == CRS
        assert str(frame["building_count"].dtype) == "Int64"
        assert str(frame["vehicles_total"].dtype) == "Int64"
        assert str(frame["zone_id"].dtype) == "string"
        assert str(frame["on_road_share"].dtype) == "float64"
        assert str(frame["vehicles_withheld"].dtype) == "bool"
    assert list(ind.district["zone_id"]) == ["west", "east"]
    assert ind.district["building_count"].sum() == 3
    assert ind.city.iloc[0]["car_parc_registered"] == 240000
    assert ind.h3["car_parc_registered"].isna().all()
    assert ind.h3["on_road_to_parc_ratio_est"].isna().all()


def test_local_time_is_utc_plus_3_in_helsinki_summer_and_plus_2_in_winter():
    buildings, vehicles, roads, aoi = frames()
    summer = run(buildings, vehicles, roads, aoi).city.iloc[0]
    assert summer["acquired_at_utc"] == "2024-06-14T05:30:00+00:00"
    assert summer["acquired_at_local"] == "2024-06-14T08:30:00+03:00"
    winter = run(buildings, vehicles, roads, aoi,
                 quality=quality(datetime(2024, 1, 15, 10, 0, tzinfo=UTC))).city.iloc[0]
    assert winter["acquired_at_local"] == "2024-01-15T12:00:00+02:00"


def test_sentinel2_capabilities_report_no_building_or_vehicle_counts():
    buildings, vehicles, roads, aoi = frames()
    ind = run(buildings, vehicles, roads, aoi, capabilities=Capabilities.for_sensor("sentinel-2-l2a", 10.0))
    for frame in (ind.city, ind.h3):
        for column in ("building_count", "building_count_est", "building_count_hi", "coverage_ratio",
                       "height_mean_m", "vehicles_total", "vehicles_on_road_lo", "on_road_share",
                       "on_road_to_parc_ratio", "vehicles_moving"):
            assert frame[column].isna().all(), column
        assert frame["notes"].str.contains("not supported by the imagery").all()
    assert ind.city.iloc[0]["road_length_km"] > 0  # from the map, not the image
    assert any("Sentinel-2" in note for note in ind.notes)


def test_landsat_and_coarse_vhr_capabilities():
    assert not Capabilities.for_sensor("landsat-c2-l2", 30.0).vehicles
    coarse = Capabilities.for_sensor("vhr", 1.0)
    assert coarse.buildings_as_objects and not coarse.vehicles
    with pytest.raises(InvalidValueError):
        Capabilities.for_sensor("worldview-9000", 0.3)


def test_low_valid_fraction_publishes_no_image_figures():
    buildings, vehicles, roads, aoi = frames()
    ind = run(buildings, vehicles, roads, aoi, quality=quality(valid=0.4))
    city = ind.city.iloc[0]
    assert city["figures_withheld"]
    for column in ("building_count", "footprint_area_m2", "height_mean_m", "vehicles_total", "on_road_share"):
        assert pd.isna(city[column]), column
    assert city["valid_fraction"] == pytest.approx(0.4)
    assert ind.h3["figures_withheld"].all()
    relaxed = run(buildings, vehicles, roads, aoi, quality=quality(valid=0.4), min_valid_fraction=0.3)
    assert relaxed.city.iloc[0]["building_count"] == 3


def test_valid_fraction_from_a_polygon_and_from_a_mask():
    buildings, vehicles, roads, aoi = frames()
    left_half = box(X0, Y0, X0 + 200, Y0 + 400)
    by_polygon = run(buildings, vehicles, roads, aoi, valid=ValidCoverage(polygon=left_half)).city.iloc[0]
    assert by_polygon["valid_fraction"] == pytest.approx(0.5)
    assert not by_polygon["figures_withheld"]
    mask = np.zeros((40, 40), dtype=bool)
    mask[:, :10] = True  # 10 m pixels: the western quarter is valid
    coverage = ValidCoverage(mask=mask, transform=Affine(10, 0, X0, 0, -10, Y0 + 400))
    by_mask = run(buildings, vehicles, roads, aoi, valid=coverage)
    assert by_mask.city.iloc[0]["valid_fraction"] == pytest.approx(0.25)
    assert by_mask.city.iloc[0]["figures_withheld"]
    published = by_mask.h3[~by_mask.h3["figures_withheld"]]
    assert (published["valid_fraction"] >= 0.5).all()


def test_inputs_in_another_crs_or_bad_settings_are_errors():
    buildings, vehicles, roads, aoi = frames()
    with pytest.raises(CRSMismatchError):
        run(buildings.to_crs(3067), vehicles, roads, aoi)
    with pytest.raises(InvalidValueError, match="timezone"):
        run(buildings, vehicles, roads, aoi, quality=SceneQuality(
            datetime(2024, 6, 14, tzinfo=UTC), "Mars/Olympus", "vhr", 0.3, "m", 1.0))
    with pytest.raises(InvalidValueError):
        SceneQuality(datetime(2024, 6, 14), "Europe/Helsinki", "vhr", 0.3, "m", 1.0)  # naive time
    with pytest.raises(InvalidValueError):
        aggregate(buildings, vehicles, roads, aoi, 4326, quality=quality(), rates=RATES, car_parc=None,
                  capabilities=VHR)


def test_no_detections_gives_zero_counts_and_no_share():
    _, _, roads, aoi = frames()
    empty_b = gpd.GeoDataFrame({"height_m": []}, geometry=[], crs=CRS)
    empty_v = gpd.GeoDataFrame({"class": [], "on_road": [], "moving": []}, geometry=[], crs=CRS)
    city = run(empty_b, empty_v, roads, aoi, min_vehicles_per_cell=0).city.iloc[0]
    assert city["building_count"] == 0 and city["vehicles_total"] == 0
    assert city["vehicles_total_lo"] == 0 and city["vehicles_total_hi"] == 0
    assert pd.isna(city["on_road_share"])
    assert shapely.equals(city.geometry, aoi)


def test_kerbside_vehicles_are_a_figure_of_their_own_with_an_interval():
    buildings, vehicles, roads, aoi = frames(n_vehicles=80, seed=3)
    rng = np.random.default_rng(3)
    vehicles["context"] = rng.choice(["road", "kerb", "car_park", "off_road"], len(vehicles))
    ind = run(buildings, vehicles, roads, aoi)
    city = ind.city.iloc[0]
    kerb = int((vehicles["context"] == "kerb").sum())
    assert city["vehicles_kerbside"] == kerb
    assert city["vehicles_kerbside_lo"] <= city["vehicles_kerbside_est"] <= city["vehicles_kerbside_hi"]
    assert city["vehicles_kerbside_hi"] > city["vehicles_kerbside_lo"]  # measured rates, not certainty
    assert city["vehicles_total"] == city["vehicles_on_road"] + city["vehicles_parked"]  # unchanged by the split
    without = run(buildings, vehicles.drop(columns="context"), roads, aoi).city.iloc[0]
    assert without["vehicles_kerbside"] == 0 and without["vehicles_on_road"] == city["vehicles_on_road"]


def test_car_park_and_kerb_vehicles_use_the_rate_measured_in_their_place():
    """A card's car-park rate moves the parked estimate only through the car-park vehicles."""
    buildings, vehicles, roads, aoi = frames(n_vehicles=120, seed=5)
    vehicles["class"] = "car"
    vehicles["moving"] = False
    vehicles["on_road"] = False
    vehicles["context"] = np.where(np.arange(len(vehicles)) < 40, "car_park", "off_road")
    detected = len(vehicles)
    base = run(buildings, vehicles, roads, aoi).city.iloc[0]
    # the overall rate (P 0.9, R 0.9) gives detected x 1.0 parked vehicles
    assert base["vehicles_parked_est"] == pytest.approx(detected, rel=1e-6)
    low_recall_in_car_parks = DetectorRates(
        buildings=RATES.buildings, vehicles=RATES.vehicles,
        vehicle_contexts={"car_park": MeasuredRate.from_counts(450, 50, 450)},  # P 0.9, R 0.5
    )
    city = run(buildings, vehicles, roads, aoi, rates=low_recall_in_car_parks).city.iloc[0]
    assert city["vehicles_parked_est"] == pytest.approx(40 * 0.9 / 0.5 + 80, rel=1e-6)
    # the class rate comes after (class, context): a card with both uses the car-park rate for cars
    both = DetectorRates(
        buildings=RATES.buildings, vehicles=RATES.vehicles,
        vehicle_classes={"car": MeasuredRate.from_counts(900, 100, 100)},
        vehicle_class_contexts={("car", "car_park"): MeasuredRate.from_counts(450, 50, 450)},
    )
    assert run(buildings, vehicles, roads, aoi, rates=both).city.iloc[0]["vehicles_parked_est"] == pytest.approx(
        40 * 0.9 / 0.5 + 80, rel=1e-6)
