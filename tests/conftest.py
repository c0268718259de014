"""Shared pytest fixtures."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture
def publish_sample() -> SimpleNamespace:
    """A fresh :func:`make_publish_sample` for each test (tests may change it)."""
    return make_publish_sample()


def make_publish_sample() -> SimpleNamespace:
    """Small, realistic outputs of one run over central Helsinki (EPSG:32635), as publish receives them.

    Buildings, vehicles (on two roads and in a car park), road carriageways, the AOI,
    one city indicator row and H3 resolution-9 cells whose vehicle figures are
    withheld below 5 vehicles. Rows come in a shuffled order, as a Dask run gives them.
    """
    import geopandas as gpd
    import h3
    import numpy as np
    from shapely import affinity
    from shapely.geometry import LineString, Polygon, box

    crs, rng = "EPSG:32635", np.random.default_rng(7)
    aoi = box(385500, 6671500, 386500, 6673000)
    road_lines = [LineString([(385500, 6671900), (386500, 6671900)]),
                  LineString([(385500, 6672500), (386500, 6672500)]),
                  LineString([(386000, 6671500), (386000, 6673000)])]
    roads = gpd.GeoDataFrame({"road_id": [1, 2, 3], "lanes": [4, 2, 2]},
                             geometry=[line.buffer(w * 3.25 / 2, cap_style="flat")
                                       for line, w in zip(road_lines, [4, 2, 2], strict=True)], crs=crs)
    footprints, heights = [], []
    for x in range(385530, 386480, 90):
        for y in range(6671530, 6672980, 120):
            if any(abs(y + 30 - ry) < 60 for ry in (6671900, 6672500)) or abs(x + 30 - 386000) < 60:
                continue
            w, d = rng.uniform(20, 55), rng.uniform(15, 45)
            footprints.append(box(x, y, x + w, y + d))
            heights.append(float(np.round(rng.gamma(4.0, 5.0), 1)))
    n_b = len(footprints)
    buildings = gpd.GeoDataFrame({
        "building_id": rng.permutation(n_b) + 1, "height_m": heights,
        "height_source": rng.choice(["shadow", "learned", "prior"], n_b, p=[0.7, 0.2, 0.1]),
        "height_sigma_m": rng.uniform(1.0, 3.5, n_b), "score": rng.uniform(0.5, 1.0, n_b),
        "scene_id": "helsinki-s7-vhr"}, geometry=footprints, crs=crs)
    boxes, on_road, headings = [], [], []
    for _ in range(160):
        if rng.random() < 0.55:  # on a road, heading along it
            line = road_lines[rng.integers(3)]
            p = line.interpolate(rng.uniform(0, line.length))
            heading = 90.0 if line.coords[0][1] == line.coords[1][1] else 0.0
            x, y, parked = p.x + rng.normal(0, 2), p.y + rng.normal(0, 2), False
        else:  # in one of two car parks
            x0, y0 = [(385600, 6672050), (386150, 6672650)][rng.integers(2)]
            x, y, heading, parked = x0 + rng.uniform(0, 120), y0 + rng.uniform(0, 60), 0.0, True
        boxes.append(affinity.rotate(box(x - 0.9, y - 2.25, x + 0.9, y + 2.25), -heading, origin=(x, y)))
        on_road.append(not parked)
        headings.append(heading)
    n_v = len(boxes)
    moving = np.array(on_road) & (rng.random(n_v) < 0.7)
    vehicles = gpd.GeoDataFrame({
        "vehicle_id": rng.permutation(n_v) + 1, "class": rng.choice(["car", "large"], n_v, p=[0.93, 0.07]),
        "on_road": on_road, "moving": moving, "speed_kmh": np.where(moving, rng.uniform(15, 50, n_v), 0.0),
        "heading_deg": headings, "score": rng.uniform(0.4, 1.0, n_v), "scene_id": "helsinki-s7-vhr"},
        geometry=boxes, crs=crs)
    lon, lat = gpd.GeoSeries([aoi.centroid], crs=crs).to_crs(4326).iloc[0].coords[0]
    ids = sorted(h3.grid_disk(h3.latlng_to_cell(lat, lon, 9), 2))
    cells = gpd.GeoDataFrame({"zone_id": ids, "h3_cell": ids}, crs=4326,
                             geometry=[Polygon([(b, a) for a, b in h3.cell_to_boundary(c)]) for c in ids]
                             ).to_crs(crs)
    joined = gpd.sjoin(gpd.GeoDataFrame(vehicles[["on_road"]], geometry=vehicles.centroid), cells[["geometry"]])
    total = joined.groupby("index_right").size().reindex(cells.index, fill_value=0).to_numpy()
    on = joined.groupby("index_right")["on_road"].sum().reindex(cells.index, fill_value=0).to_numpy()
    withheld = total < 5
    share = np.where(withheld, np.nan, on / np.maximum(total, 1))
    cells = cells.assign(level="h3", vehicles_withheld=withheld,
                         vehicles_total=np.where(withheld, np.nan, total),
                         vehicles_on_road=np.where(withheld, np.nan, on), on_road_share=share,
                         on_road_share_lo=share * 0.85, on_road_share_hi=np.minimum(share * 1.12, 1.0))
    cells = cells.sample(frac=1.0, random_state=3)  # shuffled, publish sorts
    n_on = int(np.sum(on_road))
    city_values = {
        "city": "helsinki", "level": "city", "zone_id": "helsinki",
        "building_count": n_b, "building_count_est": n_b + 2, "building_count_lo": n_b - 1,
        "building_count_hi": n_b + 6, "footprint_area_m2": float(buildings.area.sum()),
        "coverage_ratio": float(buildings.area.sum() / aoi.area),
        "height_mean_m": float(np.mean(heights)), "height_median_m": float(np.median(heights)),
        "height_p90_m": float(np.percentile(heights, 90)), "height_max_m": float(np.max(heights)),
        "built_volume_m3": float((buildings.area * buildings.height_m).sum()),
        "floor_area_m2": float((buildings.area * np.floor(buildings.height_m / 3.2)).sum()),
        "vehicles_total": n_v, "vehicles_total_est": n_v * 1.05, "vehicles_total_lo": n_v * 0.96,
        "vehicles_total_hi": n_v * 1.15, "vehicles_on_road": n_on, "vehicles_on_road_lo": n_on * 0.95,
        "vehicles_on_road_hi": n_on * 1.14, "vehicles_parked": n_v - n_on,
        "vehicles_moving": int(moving.sum()), "on_road_share": n_on / n_v,
        "on_road_share_lo": n_on / n_v - 0.06, "on_road_share_hi": n_on / n_v + 0.05,
        "road_length_km": 3.5, "lane_km": 10.0, "on_road_per_lane_km": n_on / 10.0,
        "car_parc_registered": 240000, "car_parc_source": "Traficom, passenger cars in traffic use, 2023",
        "car_parc_year": 2023, "car_parc_note": "Illustrative only: rounded, whole city.",
        "car_parc_illustrative": True, "on_road_to_parc_ratio": n_on / 240000,
        "on_road_to_parc_ratio_lo": n_on * 0.95 / 240000, "on_road_to_parc_ratio_hi": n_on * 1.14 / 240000,
        "valid_fraction": 0.97, "acquired_at_utc": "2024-06-14T09:30:00+00:00",
        "acquired_at_local": "2024-06-14T12:30:00+03:00", "sensor": "vhr", "gsd_m": 0.3,
        "model": "buildings-unet@1.0+vehicles-centernet@1.0", "vehicles_withheld": False,
    }
    city = gpd.GeoDataFrame({k: [v] for k, v in city_values.items()}, geometry=[aoi], crs=crs)
    context = {"city_name": "Helsinki", "timezone": "Europe/Helsinki", "run_id": "demo-0123abcd",
               "config_hash": "0123abcd" * 8, "code_version": "0.1.0", "privacy_min_vehicles": 5,
               "scene_ids": ["helsinki-s7-vhr"],
               "models": [{"name": "buildings-unet", "version": "1.0", "task": "buildings",
                           "precision": 0.91, "recall": 0.88},
                          {"name": "vehicles-centernet", "version": "1.0", "task": "vehicles",
                           "precision": 0.93, "recall": 0.86}]}
    return SimpleNamespace(buildings=buildings.sample(frac=1.0, random_state=1),
                           vehicles=vehicles.sample(frac=1.0, random_state=2), roads=roads,
                           aoi=gpd.GeoSeries([aoi], crs=crs), indicators_city=city,
                           indicators_h3=cells, context=context)
