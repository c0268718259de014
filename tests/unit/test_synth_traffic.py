"""Where the renderer puts vehicles, buildings' heights and roofs: rules checked on the Helsinki plan."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from baseline.core.geo import axial_difference_deg, compass_to_vector
from baseline.synth import RenderParams
from baseline.synth.inputs import load_inputs
from baseline.synth.scene_plan import plan_scene
from baseline.synth.traffic import traffic_factor


@pytest.fixture(scope="module")
def helsinki():
    params = RenderParams(seed=5)
    inputs = load_inputs(params)
    return inputs, plan_scene(inputs, params)


def test_vehicles_never_overlap_each_other_or_buildings(helsinki):
    _, plan = helsinki
    boxes = plan.vehicles.geometry.values
    a, b = shapely.STRtree(boxes).query(boxes, predicate="intersects")
    assert not (a != b).any(), "two vehicles overlap"
    hit, _ = shapely.STRtree(plan.buildings.geometry.values).query(boxes, predicate="intersects")
    assert len(hit) == 0, "a vehicle sits on a building"


def test_on_road_vehicles_are_in_carriageways_and_parked_ones_are_not(helsinki):
    inputs, plan = helsinki
    v = plan.vehicles
    road = shapely.union_all(inputs.context["carriageways"].geometry.values)
    on = v[v["on_road"]]
    assert shapely.covered_by(on.geometry.values, road.buffer(0.35)).all()
    parked = v[~v["on_road"]]
    assert not shapely.intersects(parked.geometry.values, road).any()
    kerb = shapely.union_all(inputs.context["kerb_strips"].geometry.values).buffer(0.35)
    assert shapely.covered_by(v[v["context"] == "kerb"].geometry.values, kerb).all()
    parks = shapely.union_all(shapely.make_valid(inputs.context["car_parks"].geometry.values)).buffer(0.5)
    assert shapely.covered_by(v[v["context"] == "car_park"].geometry.values, parks).all()


def test_states_are_consistent_with_the_contract(helsinki):
    v = helsinki[1].vehicles
    lane, queue = v[v["context"] == "lane"], v[v["context"] == "queue"]
    assert lane["moving"].all() and (lane["speed_kmh"] > 0).all()
    assert (~queue["moving"]).all() and (queue["speed_kmh"] == 0).all() and queue["on_road"].all()
    parked = v[v["context"].isin(["kerb", "car_park"])]
    assert (~parked["moving"]).all() and (~parked["on_road"]).all() and (parked["speed_kmh"] == 0).all()
    assert lane["speed_kmh"].between(10, 60).all()
    assert set(v["class"]) == {"car", "large"}


def test_sizes_are_plausible(helsinki):
    v = helsinki[1].vehicles
    cars, large = v[v["class"] == "car"], v[v["class"] == "large"]
    assert cars["length_m"].between(4.0, 5.0).all() and cars["width_m"].between(1.7, 1.9).all()
    assert large["length_m"].between(8.0, 12.0).all() and (large["width_m"] == 2.5).all()
    share = len(large[large["on_road"]]) / v["on_road"].sum()
    assert 0.02 < share < 0.12
    assert np.allclose(v.geometry.area, v["length_m"] * v["width_m"], rtol=1e-6)


def test_traffic_keeps_right_and_obeys_oneway(helsinki):
    inputs, plan = helsinki
    seg = inputs.context["road_segments"]
    v = plan.vehicles[plan.vehicles["on_road"]]
    centres = shapely.centroid(v.geometry.values)
    (vi, si), dist = shapely.STRtree(seg.geometry.values).query_nearest(centres, return_distance=True, all_matches=False)
    clear = dist > 0.5  # not on the centreline itself (single-lane two-way roads)
    xy = shapely.get_coordinates(seg.geometry.values[si]).reshape(-1, 2, 2)
    d = xy[:, 1] - xy[:, 0]
    d /= np.linalg.norm(d, axis=1)[:, None]
    hx, hy = compass_to_vector(v["heading_deg"].to_numpy()[vi])
    along = d[:, 0] * hx + d[:, 1] * hy
    c = shapely.get_coordinates(centres[vi])
    foot = shapely.get_coordinates(shapely.line_interpolate_point(seg.geometry.values[si],
                                                                  shapely.line_locate_point(seg.geometry.values[si], centres[vi])))
    offset = c - foot
    right_of_travel = (hx * offset[:, 1] - hy * offset[:, 0]) < 0
    parallel = axial_difference_deg(v["heading_deg"].to_numpy()[vi], seg["bearing_deg"].to_numpy()[si]) < 10
    oneway = seg["oneway"].to_numpy()[si]
    assert parallel.mean() > 0.95
    assert (along[oneway & parallel] > 0).mean() > 0.97, "one-way roads are driven the mapped way"
    two_way = ~oneway & parallel & clear & (seg["lanes"].to_numpy()[si] >= 2)
    assert two_way.sum() > 50
    assert right_of_travel[two_way].mean() > 0.95, "two-way traffic keeps right"
    assert (along[two_way] > 0).any() and (along[two_way] < 0).any(), "both directions are used"


def test_parked_cars_line_up_with_kerbs_and_in_rows(helsinki):
    inputs, plan = helsinki
    v = plan.vehicles
    kerb = v[v["context"] == "kerb"]
    seg = inputs.context["road_segments"]
    ki, si = shapely.STRtree(seg.geometry.values).query_nearest(
        shapely.centroid(kerb.geometry.values), all_matches=False)
    diff = axial_difference_deg(kerb["heading_deg"].to_numpy()[ki], seg["bearing_deg"].to_numpy()[si])
    assert (diff < 10).mean() > 0.9
    parks = shapely.make_valid(inputs.context["car_parks"].geometry.values)
    park_cars = v[v["context"] == "car_park"]
    ci, pi = shapely.STRtree(parks).query_nearest(shapely.centroid(park_cars.geometry.values), all_matches=False)
    for p in np.unique(pi):
        headings = park_cars["heading_deg"].to_numpy()[ci[pi == p]]
        if len(headings) >= 4:  # one car park's cars stand in parallel rows
            assert np.median(axial_difference_deg(headings, headings[0])) < 8


def test_counts_meet_the_demo_targets(helsinki):
    _, plan = helsinki
    v = plan.vehicles
    assert len(plan.buildings) >= 450
    assert 600 <= len(v) <= 2000
    assert 0.2 <= v["on_road"].mean() <= 0.8
    assert (v["context"] == "queue").sum() >= 30
    assert (v["context"] == "car_park").sum() >= 100


def test_heights_come_from_the_map_where_it_has_them(helsinki):
    inputs, plan = helsinki
    raw = inputs.buildings.iloc[plan.buildings["building_id"]]  # building_id is the map's row
    b = plan.buildings.assign(osm_height=raw["height_m"].to_numpy(), levels=raw["levels"].to_numpy())
    tagged = b[b["height_origin"] == "osm_height"]
    assert len(tagged) > 10 and np.allclose(tagged["height_m"], tagged["osm_height"], atol=0.01)
    from_levels = b[b["height_origin"] == "osm_levels"]
    assert len(from_levels) > 100
    assert np.allclose(from_levels["height_m"], from_levels["levels"] * 3.2 + 1.0, atol=0.01)
    drawn = b[b["height_origin"] == "drawn"]
    assert 14 < drawn["height_m"].median() < 22
    assert set(b["roof"]) == {"dark_bitumen", "grey_concrete", "red_tile", "copper_green", "light_membrane"}


def test_the_same_seed_gives_the_same_plan_and_another_seed_another_one(helsinki):
    _, first = helsinki
    again = plan_scene(load_inputs(RenderParams(seed=5)), RenderParams(seed=5))
    assert again.vehicles.geometry.equals(first.vehicles.geometry)
    assert again.buildings["height_m"].equals(first.buildings["height_m"])
    other = plan_scene(load_inputs(RenderParams(seed=6)), RenderParams(seed=6))
    assert other.roads.geometry.equals(first.roads.geometry), "the map stays"
    shared = np.intersect1d(other.buildings["building_id"], first.buildings["building_id"])
    assert len(shared) >= 0.98 * len(first.buildings)
    a = first.buildings.set_index("building_id").loc[shared, "height_m"]
    b = other.buildings.set_index("building_id").loc[shared, "height_m"]
    drawn = first.buildings.set_index("building_id").loc[shared, "height_origin"] == "drawn"
    assert (a[drawn] != b[drawn]).mean() > 0.9 and (a[~drawn] == b[~drawn]).all()
    assert abs(len(other.vehicles) - len(first.vehicles)) < 0.2 * len(first.vehicles)
    moved = ~np.isin(np.round(shapely.get_coordinates(shapely.centroid(other.vehicles.geometry.values)), 1),
                     np.round(shapely.get_coordinates(shapely.centroid(first.vehicles.geometry.values)), 1))
    assert moved.any(axis=1).mean() > 0.5


def test_traffic_follows_the_day():
    assert traffic_factor(8.0) > traffic_factor(12.0) > traffic_factor(3.0)
