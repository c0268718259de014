"""The Sentinel-2 truck detector on renders it was not trained or tuned on, and on real Sentinel-2.

Corridor renders (:mod:`baseline.synth.corridor`, seeds 9000-9004: five of
the report seeds of ``scripts/score_s2_trucks.py``; training used 5000-5119,
tuning 8000-8009) put trucks where Fisser et al. apply the method: motorways,
trunk and primary roads. One city render (central Helsinki, seed 2025, a
report seed) checks the harder case of slow town traffic with a lower bar.
The real crop is the Sentinel-2 L2A motorway sample of Fisser et al.'s S2TD
(``../shared/data/s2_trucks_test``); without a map, detections must lie on
the carriageway derived from the image alone.

The bars sit a little under what ``scripts/score_s2_trucks.py`` measured on
these seeds (see the model card), so a change that costs accuracy fails here.
They are not the issue's aim (recall and precision of 0.8): the detector does
not reach it, and the model card says by how much.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from baseline.detect.s2_trucks import COLUMNS, detect_moving_trucks, rasterize_roads, trucks_table
from baseline.evaluate.s2_trucks import derive_carriageway, on_carriageway, pooled, score_trucks

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL_DESCRIBE = {"S2_test_data.tif": {
    "sensor": "sentinel-2-l2a",
    "bands": ["B04", "B03", "B02", "B08"],
    "datetime": "2018-07-22T10:30:00Z",  # a stand-in: the sample carries no date
    "scale": 1 / 255,                    # values 3-155: byte-scaled reflectance
}}
CORRIDOR_SEEDS = range(9000, 9005)
CORRIDOR_PRECISION_MIN = 0.85      # measured 0.95 on these seeds (1.0.0: 0.87)
CORRIDOR_BRIGHT_RECALL_MIN = 0.75  # measured 0.82 of the trucks that stand out from asphalt (1.0.0: 0.73)
CORRIDOR_HEADING_MEDIAN_MAX = 6.0  # degrees; measured 3.5 (1.0.0: 1.8)
CORRIDOR_REVERSED_MAX = 0.10       # share of matched trucks whose heading is off by more than 90 degrees;
                                   # measured 6 of 103 (1.0.0: 2 of 90; over all 30 report seeds 17 of 674
                                   # against 21 of 599), which puts the heading MAE at 13.5 degrees here
CITY_PRECISION_MIN = 0.55          # measured 0.73 on seed 2025 (1.0.0: 0.44)
CITY_RECALL_MIN = 0.55             # measured 0.73 (1.0.0: 0.64)
REAL_MIN_COUNT = 10                # measured 20 detections, 14 on the derived carriageway (1.0.0: 17, 15)
REAL_ON_CARRIAGEWAY_MIN = 0.65


def test_corridor_renders_moving_trucks_found_with_speed_and_heading():
    from baseline.synth.corridor import CorridorParams, render_corridor
    from baseline.synth.materials import stands_out_from_asphalt
    from baseline.synth.sensors import SENTINEL2

    scores, found, bright = [], 0, 0
    for seed in CORRIDOR_SEEDS:
        scene = render_corridor(CorridorParams.with_random_sun(seed))
        road = rasterize_roads(scene.roads, scene.transform, scene.valid.shape)
        table = detect_moving_trucks(scene.reflectance, scene.valid, scene.transform, SENTINEL2.time_offsets_s,
                                     road_mask=road, crs=scene.grid.crs)
        score = score_trucks(table, scene.vehicles)
        scores.append(score)
        v = scene.vehicles
        trucks = v[(v["class"] == "large") & v["moving"]]
        ids = trucks["vehicle_id"].to_numpy()[stands_out_from_asphalt(trucks["colour"].to_numpy())]
        found += int(np.isin(ids, score.matched_ids).sum())
        bright += len(ids)
    total = pooled(scores)
    assert total.n_truth >= 100
    assert total.precision >= CORRIDOR_PRECISION_MIN, total.as_dict()
    assert found / bright >= CORRIDOR_BRIGHT_RECALL_MIN, (found, bright, total.as_dict())
    assert total.speed_mape <= 0.3, total.as_dict()
    heading_errors = np.abs(np.array(total.heading_errors_deg))
    assert np.median(heading_errors) <= CORRIDOR_HEADING_MEDIAN_MAX, total.as_dict()
    assert (heading_errors > 90.0).mean() <= CORRIDOR_REVERSED_MAX, total.as_dict()


@pytest.mark.slow
def test_city_render_slow_trucks_found_less_well_but_found():
    from baseline.synth import RenderParams, render_scene
    from baseline.synth.sensors import SENTINEL2

    result = render_scene(RenderParams(city="helsinki", seed=2025, gsd_m=1.0))
    refl = result.s2[:4].astype(np.float32) * 1e-4
    grid = result.s2_grid
    road = rasterize_roads(result.roads, grid.transform, grid.shape)
    found = detect_moving_trucks(refl, result.s2_valid, grid.transform, SENTINEL2.time_offsets_s,
                                 road_mask=road, crs=grid.crs)
    score = score_trucks(found, result.vehicles)
    assert score.n_truth >= 10
    assert score.precision >= CITY_PRECISION_MIN and score.recall >= CITY_RECALL_MIN, score.as_dict()


@pytest.mark.shared_data
def test_real_motorway_crop(tmp_path):
    folder = DATA / "s2_trucks_test"
    if not folder.is_dir():
        pytest.skip(f"real sample s2_trucks_test not present under {DATA}")
    from baseline.ingest import ArchiveSource
    from baseline.preprocess.sentinel2 import scene_reflectance

    (scene,) = ArchiveSource(folder, describe=REAL_DESCRIBE, cache_dir=tmp_path).scenes()
    table = trucks_table(scene, None)
    assert list(table.columns) == ["scene_id", *COLUMNS, "geometry"]
    assert len(table) >= REAL_MIN_COUNT
    refl, valid = scene_reflectance(scene)
    road = derive_carriageway(refl, valid)
    cols, rows = ~scene.transform * (table.geometry.x.to_numpy(), table.geometry.y.to_numpy())
    on = on_carriageway(np.asarray(rows), np.asarray(cols), road)
    # no map is given here, so roofs of the industrial estate beside the motorway can fire too; the
    # pipeline only looks on the map's carriageways
    assert on.mean() >= REAL_ON_CARRIAGEWAY_MIN, f"{on.sum()} of {len(on)} detections on the derived carriageway"
