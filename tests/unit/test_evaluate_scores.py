"""Scores worked by hand: precision/recall/F1, count and share errors, heights, a run folder, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from baseline.core.geoparquet import write_geoparquet
from baseline.errors import InputFileError, MissingColumnError
from baseline.evaluate import (
    RUN_KEYS,
    MissingCRSError,
    evaluate_buildings,
    evaluate_run,
    evaluate_vehicles,
)
from baseline.evaluate.metrics import precision_recall_f1, relative_count_error, share_error

CRS = "EPSG:32635"
X0, Y0 = 385000.0, 6672000.0


def car(x, y=0.0):
    return box(X0 + x - 2.2, Y0 + y - 0.9, X0 + x + 2.2, Y0 + y + 0.9)


def square(x, y=0.0):
    return box(X0 + x, Y0 + y, X0 + x + 10, Y0 + y + 10)


def truth_tables():
    buildings = gpd.GeoDataFrame(
        {"building_id": [1, 2, 3, 4, 5], "height_m": [10.0, 12.0, 20.0, 30.0, 5.0],
         "height_origin": "drawn", "roof": "tile"},
        geometry=[square(0), square(20), square(40), square(60), square(250)], crs=CRS,
    )
    vehicles = gpd.GeoDataFrame(
        {"vehicle_id": range(7), "class": ["car", "car", "car", "large", "car", "car", "car"],
         "on_road": [True, True, False, True, False, False, True],
         "moving": [True, False, False, True, False, False, True],
         "speed_kmh": [40.0, 0, 0, 30.0, 0, 0, 50.0], "heading_deg": [90.0, 90, 0, 90, 0, 0, 90],
         "context": ["lane", "queue", "kerb", "lane", "car_park", "car_park", "lane"],
         "length_m": 4.4, "width_m": 1.8},
        geometry=[car(0), car(10), car(20), car(30), car(40), car(50), car(250)], crs=CRS,
    )
    return buildings, vehicles


def pred_tables():
    buildings = gpd.GeoDataFrame(
        {"building_id": range(6), "height_m": [11.0, 10.0, 26.0, 8.0, 9.0, 5.0],
         "height_source": "shadow", "height_sigma_m": 1.0, "score": 0.9, "scene_id": "s"},
        # three 1 m shifts of truth 1-3 (IoU 0.818), two false positives, one outside the AOI
        geometry=[square(1), square(21), square(41), square(100), square(120), square(251)], crs=CRS,
    )
    vehicles = gpd.GeoDataFrame(
        {"vehicle_id": range(7), "class": ["car", "car", "car", "car", "car", "car", "car"],
         "on_road": [True, True, True, True, False, False, True],
         "moving": [True, True, False, True, False, False, True],
         "speed_kmh": [35.0, 10.0, 0, 30.0, 0, 0, 50.0], "heading_deg": [90.0, 90, 0, 270, 0, 0, 90],
         "score": 0.8, "scene_id": "s"},
        geometry=[car(0.5), car(10, 1), car(20), car(30, 0.5), car(40), car(80), car(250)], crs=CRS,
    )
    return buildings, vehicles


def write_run_and_truth(root: Path, *, with_aoi: bool = True) -> tuple[Path, Path]:
    run, truth = root / "run", root / "scene" / "truth"
    tb, tv = truth_tables()
    pb, pv = pred_tables()
    write_geoparquet(tb, truth / "buildings.parquet")
    write_geoparquet(tv, truth / "vehicles.parquet")
    write_geoparquet(pb, run / "buildings.parquet")
    write_geoparquet(pv, run / "vehicles.parquet")
    if with_aoi:  # the run's AOI ends at x = 200 m: objects at 250 m are out
        aoi = gpd.GeoDataFrame({"city": ["t"]}, geometry=[box(X0 - 20, Y0 - 20, X0 + 200, Y0 + 40)], crs=CRS)
        write_geoparquet(aoi, run / "indicators_city.parquet")
    return run, truth


def test_precision_recall_f1_arithmetic():
    p, r, f1 = precision_recall_f1(8, 2, 4)
    assert (p, r) == (0.8, pytest.approx(2 / 3))
    assert f1 == pytest.approx(2 * 0.8 * (2 / 3) / (0.8 + 2 / 3))
    assert precision_recall_f1(0, 0, 3) == (None, 0.0, 0.0)
    assert precision_recall_f1(0, 0, 0) == (None, None, None)
    assert relative_count_error(5, 4) == 0.25 and relative_count_error(3, 0) is None


def test_on_road_share_error_is_the_absolute_difference_of_shares():
    assert share_error([True, True, False, False], [True, False, False, False, False]) == pytest.approx(0.3)
    assert share_error([], [True]) is None


def test_evaluate_run_gives_the_hand_worked_scores(tmp_path):
    run, truth = write_run_and_truth(tmp_path)
    m = evaluate_run(run, truth)
    assert list(m)[: len(RUN_KEYS)] == list(RUN_KEYS)
    # buildings: 3 matched, 2 false positives, truth 4 missed (the pair at 250 m is outside the AOI)
    assert (m["building_tp"], m["building_fp"], m["building_fn"]) == (3, 2, 1)
    assert m["building_precision"] == pytest.approx(0.6)
    assert m["building_recall"] == pytest.approx(0.75)
    assert m["building_f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert m["building_count_error"] == pytest.approx((5 - 4) / 4)
    # heights of matched pairs: +1, -2, +6
    assert m["height_mae_m"] == pytest.approx(3.0)
    assert m["height_bias_m"] == pytest.approx(5 / 3)
    assert m["height_rmse_m"] == pytest.approx(math.sqrt(41 / 3))
    # vehicles: 5 matched, the one at 80 m is false, the car park car at 50 m is missed
    assert (m["vehicle_tp"], m["vehicle_fp"], m["vehicle_fn"]) == (5, 1, 1)
    assert m["vehicle_precision"] == pytest.approx(5 / 6) and m["vehicle_f1"] == pytest.approx(5 / 6)
    assert m["vehicle_count_error"] == 0.0
    assert m["on_road_accuracy"] == pytest.approx(4 / 5)  # the kerb car was called on-road
    assert m["on_road_share_error"] == pytest.approx(4 / 6 - 3 / 6)
    assert m["moving_accuracy"] == pytest.approx(4 / 5)
    assert m["speed_mae_kmh"] == pytest.approx(2.5)  # moving truths: |35-40| and |30-30|
    assert m["heading_mae_deg"] == pytest.approx(90.0)  # 0 and 180 degrees off
    assert m["vehicle_class_accuracy"] == pytest.approx(4 / 5)
    assert m["vehicle_f1_car"] == pytest.approx(8 / 11)  # per class: 4 tp, 2 fp, 1 fn
    assert m["vehicle_f1_large"] == 0.0 and m["vehicle_precision_large"] is None
    assert m["vehicle_recall_lane"] == 1.0 and m["vehicle_recall_car_park"] == 0.5
    assert m["vehicle_recall_kerb"] == 1.0 and m["vehicle_recall_queue"] == 1.0
    assert m["iou"] == 0.5 and m["radius_m"] == 1.5 and m["run_dir"] == str(run)
    # truth extent (x -2.2 to 260.0 m, y -0.9 to 10 m) within the AOI (x up to 200 m)
    assert m["area_km2"] == pytest.approx(202.2 * 10.9 / 1e6)
    json.dumps(m, allow_nan=False)  # plain JSON


def test_the_scene_extent_beside_the_truth_clips_too(tmp_path):
    run, truth = write_run_and_truth(tmp_path, with_aoi=False)
    unclipped = evaluate_run(run, truth)  # no AOI, no scene item: the truth's bounding box
    assert unclipped["vehicle_tp"] == 6 and unclipped["building_tp"] == 4  # the pairs at 250 m count
    # the scene's image ends at x = 200 m: the pairs at 250 m are out
    item = {"properties": {"proj:code": CRS, "proj:shape": [100, 250],
                           "proj:transform": [1.0, 0.0, X0 - 50, 0.0, -1.0, Y0 + 50]}}
    (truth.parent / "vhr.json").write_text(json.dumps(item))
    m = evaluate_run(run, truth)
    assert m["vehicle_tp"] == 5 and m["building_fn"] == 1


def test_stricter_thresholds_change_the_answer(tmp_path):
    run, truth = write_run_and_truth(tmp_path)
    m = evaluate_run(run, truth, iou=0.9, radius=0.4)
    assert m["building_tp"] == 0 and m["height_mae_m"] is None
    assert m["vehicle_tp"] == 2  # only the exact positions (20 m and 40 m); 0.5 m off is out


def test_evaluate_run_errors_name_the_file(tmp_path):
    run, truth = write_run_and_truth(tmp_path)
    with pytest.raises(InputFileError, match="run folder not found"):
        evaluate_run(tmp_path / "nope", truth)
    pv = gpd.read_parquet(run / "vehicles.parquet").drop(columns=["on_road", "bbox"], errors="ignore")
    write_geoparquet(pv, run / "vehicles.parquet")
    with pytest.raises(MissingColumnError, match="on_road") as err:
        evaluate_run(run, truth)
    assert "vehicles.parquet" in str(err.value)


def test_files_in_other_crs_and_formats_are_reprojected(tmp_path):
    tb, tv = truth_tables()
    pb, pv = pred_tables()
    write_geoparquet(tb, tmp_path / "truth_b.parquet")
    pb.to_crs(4326).to_file(tmp_path / "pred_b.geojson", driver="GeoJSON")
    m = evaluate_buildings(tmp_path / "pred_b.geojson", tmp_path / "truth_b.parquet", iou=0.5)
    assert (m["building_tp"], m["building_fp"], m["building_fn"]) == (4, 2, 1)  # nothing clipped here
    assert m["height_mae_m"] == pytest.approx((1 + 2 + 6 + 0) / 4, abs=1e-6)
    assert m["crs"] == CRS

    tv.to_crs(4326).to_file(tmp_path / "truth_v.geojson", driver="GeoJSON")
    write_geoparquet(pv, tmp_path / "pred_v.parquet")
    m = evaluate_vehicles(tmp_path / "pred_v.parquet", tmp_path / "truth_v.geojson", radius=1.5)
    assert (m["vehicle_tp"], m["vehicle_fp"], m["vehicle_fn"]) == (6, 1, 1)
    assert m["crs"] == CRS  # degrees -> the truth's UTM zone


def test_missing_heights_are_left_out_with_a_note(tmp_path):
    tb, _ = truth_tables()
    pb, _ = pred_tables()
    write_geoparquet(tb, tmp_path / "truth.parquet")
    write_geoparquet(pb.drop(columns="height_m"), tmp_path / "pred.parquet")
    m = evaluate_buildings(tmp_path / "pred.parquet", tmp_path / "truth.parquet")
    assert "height_mae_m" not in m
    assert any("height" in note and "pred.parquet" in note for note in m["notes"])
    assert m["building_tp"] == 4


def test_a_file_without_crs_is_a_typed_error(tmp_path):
    tb, _ = truth_tables()
    write_geoparquet(tb, tmp_path / "truth.parquet")
    tb.set_crs(None, allow_override=True).to_parquet(tmp_path / "nocrs.parquet")
    with pytest.raises(MissingCRSError, match="no CRS"):
        evaluate_buildings(tmp_path / "nocrs.parquet", tmp_path / "truth.parquet")


def test_per_map_context_precision_recall_and_on_road_accuracy():
    """Lanes and queues are the road; precision goes by the context the pipeline gave its detection."""
    import geopandas as gpd
    from shapely.geometry import Point

    from baseline.evaluate.scoring import vehicle_metrics

    truth = gpd.GeoDataFrame({
        "context": ["lane", "queue", "kerb", "kerb", "car_park"],
        "on_road": [True, True, False, False, False],
    }, geometry=[Point(0, 0), Point(10, 0), Point(20, 0), Point(30, 0), Point(40, 0)], crs="EPSG:32635")
    pred = gpd.GeoDataFrame({
        "context": ["road", "road", "kerb", "kerb", "car_park"],
        "on_road": [True, True, True, False, False],  # the first kerb car called on the road
    }, geometry=[Point(0, 0.2), Point(10, 0.1), Point(20, 0.3), Point(35, 0), Point(40, 0.1)], crs="EPSG:32635")
    out = vehicle_metrics(pred, truth, radius=1.5)
    assert out["vehicle_recall_ctx_road"] == 1.0 and out["vehicle_precision_ctx_road"] == 1.0
    assert out["vehicle_recall_ctx_kerb"] == 0.5  # the car at x=30 was missed
    assert out["vehicle_precision_ctx_kerb"] == 0.5  # the detection at x=35 is false
    assert out["vehicle_f1_ctx_kerb"] == 0.5
    assert out["on_road_accuracy_ctx_kerb"] == 0.0 and out["on_road_accuracy_ctx_road"] == 1.0
    assert out["on_road_accuracy_ctx_car_park"] == 1.0


def test_height_errors_per_band_of_true_height():
    import geopandas as gpd
    from shapely.geometry import box

    from baseline.evaluate.scoring import building_metrics

    truth_h = [6.0, 8.0, 20.0, 60.0]
    pred_h = [7.0, 7.0, 23.0, 40.0]  # the tall one squashed by 20 m
    geoms = [box(i * 50, 0, i * 50 + 20, 20) for i in range(4)]
    truth = gpd.GeoDataFrame({"height_m": truth_h}, geometry=geoms, crs="EPSG:32635")
    pred = gpd.GeoDataFrame({"height_m": pred_h}, geometry=geoms, crs="EPSG:32635")
    out = building_metrics(pred, truth)
    assert out["height_count_under_10m"] == 2 and out["height_mae_m_under_10m"] == 1.0
    assert out["height_bias_m_under_10m"] == 0.0
    assert out["height_mae_m_10_30m"] == 3.0 and out["height_count_10_30m"] == 1
    assert out["height_mae_m_over_30m"] == 20.0 and out["height_bias_m_over_30m"] == -20.0
    assert out["height_rmse_m"] > out["height_mae_m"]  # the squashed tower dominates


def test_height_interval_coverage_counts_errors_inside_their_95_percent_interval():
    import geopandas as gpd
    from shapely.geometry import box

    from baseline.evaluate.scoring import building_metrics

    geoms = [box(i * 50, 0, i * 50 + 20, 20) for i in range(4)]
    truth = gpd.GeoDataFrame({"height_m": [6.0, 8.0, 20.0, 60.0]}, geometry=geoms, crs="EPSG:32635")
    # errors +1, -1, +3, -20 against 95% intervals of 1.96, 0.98, 9.8 and (no sigma)
    pred = gpd.GeoDataFrame({"height_m": [7.0, 7.0, 23.0, 40.0], "height_sigma_m": [1.0, 0.5, 5.0, float("nan")]},
                            geometry=geoms, crs="EPSG:32635")
    out = building_metrics(pred, truth)
    assert out["height_count_with_sigma"] == 3
    assert out["height_within_95_interval"] == pytest.approx(2 / 3)
    assert "height_within_95_interval" not in building_metrics(pred.drop(columns="height_sigma_m"), truth)


def test_height_errors_per_height_source():
    import geopandas as gpd
    from shapely.geometry import box

    from baseline.evaluate.scoring import building_metrics

    geoms = [box(i * 50, 0, i * 50 + 20, 20) for i in range(4)]
    truth = gpd.GeoDataFrame({"height_m": [6.0, 8.0, 20.0, 60.0]}, geometry=geoms, crs="EPSG:32635")
    # shadow: errors +1 and -1 (sigmas 1 and 0.25); learned: +3 and -20 (sigmas 5 and 5)
    pred = gpd.GeoDataFrame(
        {"height_m": [7.0, 7.0, 23.0, 40.0], "height_sigma_m": [1.0, 0.25, 5.0, 5.0],
         "height_source": ["shadow", "shadow", "learned", "learned"]},
        geometry=geoms, crs="EPSG:32635")
    out = building_metrics(pred, truth)
    assert out["height_count_shadow"] == 2 and out["height_mae_m_shadow"] == 1.0 and out["height_bias_m_shadow"] == 0.0
    assert out["height_count_learned"] == 2 and out["height_mae_m_learned"] == 11.5
    assert out["height_bias_m_learned"] == -8.5
    assert out["height_within_95_interval_shadow"] == 0.5 and out["height_within_95_interval_learned"] == 0.5
    assert "height_mae_m_dsm" not in out
    assert "height_mae_m_shadow" not in building_metrics(pred.drop(columns="height_source"), truth)


def test_recall_per_footprint_size_class():
    """A missed kiosk shows in the small class, not hidden in one F1."""
    import geopandas as gpd
    from shapely.geometry import box

    from baseline.evaluate.scoring import building_metrics

    truth = gpd.GeoDataFrame(geometry=[
        box(0, 0, 4, 4),  # 16 m2 kiosk, missed
        box(10, 0, 15, 5),  # 25 m2 shed, found
        box(20, 0, 26, 7),  # 42 m2 garage, found
        box(40, 0, 60, 20), box(70, 0, 90, 20),  # 400 m2 blocks: one found, one missed
    ], crs="EPSG:32635")
    pred = gpd.GeoDataFrame(geometry=[truth.geometry[1], truth.geometry[2], truth.geometry[3]], crs="EPSG:32635")
    out = building_metrics(pred, truth)
    assert out["building_truth_count_under_30m2"] == 2 and out["building_recall_under_30m2"] == 0.5
    assert out["building_truth_count_30_60m2"] == 1 and out["building_recall_30_60m2"] == 1.0
    assert out["building_truth_count_over_60m2"] == 2 and out["building_recall_over_60m2"] == 0.5


def test_recall_per_size_class_is_none_where_a_class_is_empty():
    import geopandas as gpd
    from shapely.geometry import box

    from baseline.evaluate.scoring import building_metrics

    truth = gpd.GeoDataFrame(geometry=[box(0, 0, 20, 20)], crs="EPSG:32635")
    out = building_metrics(truth.copy(), truth)
    assert out["building_recall_over_60m2"] == 1.0
    assert out["building_recall_under_30m2"] is None and out["building_truth_count_under_30m2"] == 0
