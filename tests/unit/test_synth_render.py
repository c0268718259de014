"""The rendered pixels agree with the truth: shadows, vehicles, grids, determinism, Sentinel-2."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely

from baseline.synth import RenderParams, parse_time, render_scene
from baseline.synth.geometry import translate
from baseline.synth.grid import Grid
from baseline.synth.sensors import (
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SENTINEL2,
    VHR,
)
from baseline.synth.sentinel2 import _moving_vehicles
from baseline.synth.shadows import box_sweeps, shadow_direction

# streets of central Helsinki with moving traffic, a queue, kerb parking and a car park
STREETS = (385750.0, 6672050.0, 385950.0, 6672250.0)


@pytest.fixture(scope="module")
def box_building(tmp_path_factory):
    """One flat 20 m high, 20 x 20 m box on open ground outside any mapped city, given in WGS 84."""
    path = tmp_path_factory.mktemp("box") / "box.geojson"
    frame = gpd.GeoDataFrame({"height": [20.0]}, geometry=[shapely.box(500000, 6700000, 500020, 6700020)],
                             crs=32635).to_crs(4326)
    frame.to_file(path, driver="GeoJSON")
    return path


@pytest.mark.parametrize(("elevation", "azimuth"), [(40.0, 180.0), (30.0, 90.0)])
def test_a_box_buildings_shadow_is_height_over_tan_elevation_long(box_building, elevation, azimuth):
    result = render_scene(RenderParams(buildings_path=box_building, sun_elevation_deg=elevation,
                                       sun_azimuth_deg=azimuth, sentinel2=False, seed=3))
    assert result.buildings["height_origin"].tolist() == ["file"]
    assert result.buildings["height_m"].tolist() == [20.0]
    g = result.vhr_grid
    red = result.vhr[2].astype(float)
    row0, col0 = g.rowcol(np.array([500000.0, 500020.0]), np.array([6700020.0, 6700000.0]))
    if azimuth == 180.0:  # shadow falls north: walk up the column through the middle
        profile = red[: int(round(row0[0])), int(round((col0[0] + col0[1]) / 2))][::-1]
    else:                 # shadow falls west: walk left along the middle row
        profile = red[int(round((row0[0] + row0[1]) / 2)), : int(round(col0[0]))][::-1]
    ground = np.median(profile[-20:])
    shadow = np.median(profile[5:20])
    assert shadow < 0.5 * ground
    dark = profile < (ground + shadow) / 2
    measured = np.argmin(dark) if not dark.all() else len(dark)
    expected = 20.0 / math.tan(math.radians(elevation)) / g.gsd
    assert abs(measured - expected) <= 1.0, (measured, expected)


@pytest.fixture(scope="module")
def streets():
    params = dict(bbox=STREETS, seed=4, sentinel2=False)
    return render_scene(RenderParams(**params)), render_scene(RenderParams(vehicles=False, **params))


def _allowed_region(result) -> shapely.Geometry:
    """Where a vehicle may change pixels: its box at each band's time, and its shadow there."""
    v = result.vehicles
    ux, uy, per_m = shadow_direction(result.sun_elevation_deg, result.sun_azimuth_deg)
    heights = np.where(v["class"] == "large", 3.2, 1.5)
    h = np.radians(v["heading_deg"].to_numpy())
    speed = v["speed_kmh"].to_numpy() / 3.6
    parts = []
    for band in range(4):
        dt = VHR.offset(band)
        boxes = translate(v.geometry.values, speed * np.sin(h) * dt, speed * np.cos(h) * dt)
        parts.extend(box_sweeps(boxes, heights, ux, uy, per_m))
    return shapely.union_all(parts).buffer(1.5 * result.vhr_grid.gsd)


def test_vehicle_pixels_lie_in_their_truth_boxes_and_every_box_shows_a_vehicle(streets):
    with_cars, without = streets
    v = with_cars.vehicles
    assert len(v) > 30 and set(v["context"]) == {"lane", "queue", "kerb", "car_park"}
    assert without.vehicles.empty
    diff = np.abs(with_cars.vhr.astype(np.int32) - without.vhr.astype(np.int32)).max(axis=0) > 30
    g = with_cars.vhr_grid
    allowed = g.mask([_allowed_region(with_cars)])
    stray = diff & ~allowed
    assert stray.sum() == 0, f"{stray.sum()} changed pixels outside every vehicle box and shadow"
    assert diff.sum() > 0.5 * g.mask(v.geometry.values).sum()
    # recall: each vehicle wholly inside the image changes most of its own (red-band) box
    inside = shapely.contains(shapely.box(*g.bounds).buffer(-1.0), v.geometry.values)
    shown = [diff[g.mask([box])].mean() for box in v.geometry.values[inside]]
    assert np.mean(np.array(shown) > 0.5) > 0.9


def test_the_crop_grid_is_what_was_asked():
    bbox = (385712.0, 6672003.0, 385861.0, 6672149.0)
    result = render_scene(RenderParams(bbox=bbox, gsd_m=0.5, seed=1))
    g = result.vhr_grid
    assert g.crs.to_epsg() == 32635
    assert g.gsd == 0.5 and tuple(g.transform)[:6] == (0.5, 0.0, 385710.0, 0.0, -0.5, 6672150.0)
    assert result.vhr.shape == (4, 300, 320) and result.vhr.dtype == np.uint16  # snapped out to 10 m
    assert result.s2_grid.transform.a == 10.0 and result.s2.shape == (5, 15, 16)
    assert (result.s2_grid.x0, result.s2_grid.y0) == (g.x0, g.y0)
    assert result.valid.all() and (result.vhr > 0).all()
    # truth is restricted to the image
    assert shapely.covered_by(result.buildings.geometry.values, shapely.box(*g.bounds).buffer(1e-6)).all()
    assert shapely.intersects(shapely.box(*g.bounds), result.vehicles.geometry.values).all()


def test_same_seed_same_pixels_another_seed_or_sun_another_scene():
    bbox = (385750.0, 6672050.0, 385850.0, 6672150.0)
    a = render_scene(RenderParams(bbox=bbox, seed=8))
    b = render_scene(RenderParams(bbox=bbox, seed=8))
    assert np.array_equal(a.vhr, b.vhr) and np.array_equal(a.s2, b.s2)
    assert a.vehicles.equals(b.vehicles)
    c = render_scene(RenderParams(bbox=bbox, seed=9))
    assert (a.vhr != c.vhr).any(axis=0).mean() > 0.5
    d = render_scene(RenderParams(bbox=bbox, seed=8, sun_elevation_deg=25.0, sun_azimuth_deg=230.0))
    assert (np.abs(a.vhr.astype(int) - d.vhr.astype(int)).max(axis=0) > 200).mean() > 0.05


def test_sentinel2_is_the_area_average_of_the_same_ground():
    result = render_scene(RenderParams(bbox=(385700.0, 6672000.0, 386000.0, 6672300.0), seed=2, vehicles=False))
    vhr_red = result.vhr[2][result.valid].astype(float).mean()
    s2_red = result.s2[2][result.s2_valid].astype(float).mean()
    assert s2_red == pytest.approx(vhr_red, rel=0.01)
    # 10 m pixels: block means of the VHR image
    g = result.vhr_grid
    rows, cols = np.meshgrid(np.arange(30), np.arange(30), indexing="ij")
    block = int(round(10.0 / g.gsd))  # 33 px blocks ignore the 1/3 px remainder
    vhr_blocks = result.vhr[2][: 30 * block, : 30 * block].reshape(30, block, 30, block).mean(axis=(1, 3))
    corr = np.corrcoef(vhr_blocks.ravel(), result.s2[2].astype(float).ravel())[0, 1]
    assert corr > 0.9
    scl = result.s2[4]
    assert set(np.unique(scl)) <= {4, 5, 6} and (scl == 4).any() and (scl == 5).any()


def test_fast_trucks_leave_a_rainbow_in_sentinel2():
    """A 12 m truck at 90 km/h due east: each band sees it v * offset further back than B04."""
    grid = Grid(0.0, 200.0, 10.0, 20, 20, gpd.GeoSeries([], crs=32635).crs)
    truck = gpd.GeoDataFrame(
        {"vx": [25.0], "vy": [0.0], "colour": [0], "height_m": [3.2]},
        geometry=[shapely.box(144.0, 98.75, 156.0, 101.25)], crs=32635,
    )
    delta = _moving_vehicles(grid, truck, shadow_direction(80.0, 180.0))
    x = (np.arange(20) + 0.5) * 10.0
    centre = {}
    for b, name in enumerate(SENTINEL2.bands):
        w = np.clip(delta[b], 0, None).sum(axis=0)
        centre[name] = (w * x).sum() / w.sum()
    for name in ("B02", "B03", "B08"):
        expected = 150.0 + 25.0 * SENTINEL2.time_offsets_s[name]
        assert centre[name] == pytest.approx(expected, abs=1.5), name
    assert centre["B04"] == pytest.approx(150.0, abs=1.5)
    assert centre["B04"] - centre["B02"] > 20.0


def test_clouds_cover_the_asked_fraction_and_are_flagged_in_scl():
    result = render_scene(RenderParams(gsd_m=2.0, clouds=0.3, seed=1, vehicles=False))
    assert result.cloud_cover_pct == pytest.approx(30.0, abs=6.0)
    assert result.s2_cloud_cover_pct == pytest.approx(30.0, abs=6.0)
    scl = result.s2[4]
    assert np.isin(scl, [SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH]).mean() > 0.2
    assert (scl == SCL_CLOUD_SHADOW).any()
    # clouds are bright in every band
    cloudy = scl == SCL_CLOUD_HIGH
    assert (result.s2[:4, cloudy].mean(axis=1) > 4500).all()


def test_footprint_heights_column_is_found_named_or_drawn(box_building, tmp_path):
    from baseline.errors import MissingColumnError, RenderError

    with pytest.raises(MissingColumnError, match="no column 'storeys'"):
        render_scene(RenderParams(buildings_path=box_building, height_column="storeys"))
    bare = tmp_path / "bare.gpkg"
    gpd.read_file(box_building).drop(columns="height").to_file(bare, driver="GPKG")
    result = render_scene(RenderParams(buildings_path=bare, sentinel2=False, sun_elevation_deg=50.0,
                                       sun_azimuth_deg=180.0))
    assert result.buildings["height_origin"].tolist() == ["drawn"]
    assert 6.0 <= result.buildings["height_m"].iloc[0] <= 45.0
    with pytest.raises(RenderError, match="above the horizon"):
        render_scene(RenderParams(buildings_path=box_building, time=parse_time("2024-12-14T22:00:00Z")))


def test_footprints_inside_the_map_area_render_with_the_map_roads(tmp_path):
    """Given footprints among mapped streets: road segments and carriageways stay row-aligned (was an IndexError)."""
    footprints = gpd.GeoDataFrame(
        {"height_m": [12.0, 25.0, 40.0]},
        geometry=[shapely.box(385920, 6672220, 385950, 6672250), shapely.box(385990, 6672300, 386020, 6672340),
                  shapely.box(386050, 6672360, 386080, 6672380)],
        crs="EPSG:32635",
    )
    path = tmp_path / "footprints.geojson"
    footprints.to_file(path, driver="GeoJSON")
    result = render_scene(RenderParams(city="helsinki", seed=5, buildings_path=path, height_column="height_m",
                                       sun_elevation_deg=45, sun_azimuth_deg=200, sentinel2=False))
    assert sorted(result.buildings["height_m"].round(1)) == [12.0, 25.0, 40.0]
    assert len(result.roads) > 0  # the map's streets came along
