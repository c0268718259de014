"""Score the Sentinel-2 moving-truck detector on unseen renders and run it on the real motorway crop.

Usage::

    .venv/bin/python scripts/score_s2_trucks.py [--seeds 2025-2031] [--corridor-seeds 9000-9029]
        [--png out.png] [--json out.json]

(a) City renders: central Helsinki with each seed (``baseline.synth``
defaults: VHR 0.3 m, 2024-06-14 09:30 UTC, sun computed), never a seed the
network was trained on (1000-1079) or the thresholds tuned on (7, 101-105).
Renders are kept under ``--cache`` so a second run only scores. The road mask
is the scene's OSM carriageways (the map context the pipeline would pass).
City trucks drive at 15-40 km/h: their band copies lie within one 10 m pixel.

(b) Corridor renders (:mod:`baseline.synth.corridor`): motorways, trunk and
primary roads through open country, where Fisser et al. apply the method;
seeds 9000-9029 (training used 5000-5119, tuning 8000-8009).

Printed per seed and pooled: moving trucks in the image, detections,
precision, recall, F1 (match within 15 m), recall over the trucks whose paint
stands out from asphalt (``bright``: white, silver, red; about a quarter of
trucks are dark and leave almost no signature at 10 m), speed MAE and heading
error over matched trucks; under each table, recall by paint (pooled).

(c) The real Sentinel-2 L2A crop of a motorway near Braunschweig
(``../shared/data/s2_trucks_test``; skipped when absent): loaded through
``ArchiveSource`` (bands B04 B03 B02 B08, values 3-155 taken as reflectance x
255), run without any map, and checked against the carriageway derived from
the image alone (:func:`baseline.evaluate.s2_trucks.derive_carriageway`): the
count of detections and the share lying on it. ``--png`` writes an overlay.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from pyproj import CRS

from baseline.detect.s2_trucks import (
    TruckNet,
    TruckParams,
    detect_moving_trucks,
    load_truck_net,
    model_params,
    rasterize_roads,
    trucks_table,
)
from baseline.evaluate.metrics import json_ready
from baseline.evaluate.s2_trucks import (
    TruckScore,
    derive_carriageway,
    moving_trucks,
    on_carriageway,
    pooled,
    score_trucks,
)
from baseline.preprocess.sentinel2 import scene_reflectance
from baseline.synth.seeds import seed_list_arg

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REAL_FOLDER = "s2_trucks_test"
REAL_FILE = "S2_test_data.tif"
REAL_DESCRIBE = {REAL_FILE: {
    "sensor": "sentinel-2-l2a",
    "bands": ["B04", "B03", "B02", "B08"],  # S2TD's order (SOURCE.md)
    "datetime": "2018-07-22T10:30:00Z",      # a stand-in: the sample carries no date; nothing depends on it
    "scale": 1 / 255,                        # values 3-155: byte-scaled reflectance (Sentinel Hub convention)
}}
REPORT_SEEDS = "2025-2031"
CORRIDOR_SEEDS = "9000-9029"


def rendered(seed: int, cache: Path) -> dict:
    """The seed's Sentinel-2 image, grid and truth, rendered once and kept under ``cache``."""
    folder = cache / f"helsinki-s{seed}"
    if not (folder / "s2.npz").is_file():
        from baseline.synth import RenderParams, render_scene

        result = render_scene(RenderParams(city="helsinki", seed=seed))
        folder.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(folder / "s2.npz", s2=result.s2, valid=result.s2_valid,
                            transform=np.array(list(result.s2_grid.transform)[:6]))
        (folder / "crs.wkt").write_text(result.s2_grid.crs.to_wkt())
        vehicles = result.vehicles.merge(vehicle_colours(seed), on="vehicle_id", how="left")
        vehicles.to_parquet(folder / "vehicles.parquet")
        result.roads.to_parquet(folder / "roads.parquet")
    z = np.load(folder / "s2.npz")
    return {
        "reflectance": z["s2"][:4].astype(np.float32) * 1e-4, "valid": z["valid"],
        "transform": Affine(*z["transform"]), "crs": CRS.from_wkt((folder / "crs.wkt").read_text()),
        "vehicles": gpd.read_parquet(folder / "vehicles.parquet"), "roads": gpd.read_parquet(folder / "roads.parquet"),
    }


def vehicle_colours(seed: int) -> pd.DataFrame:
    """The renderer's colour of every vehicle (not in the truth table): the same plan, replayed."""
    from baseline.synth import RenderParams
    from baseline.synth.inputs import load_inputs
    from baseline.synth.scene_plan import plan_scene

    params = RenderParams(city="helsinki", seed=seed)
    plan = plan_scene(load_inputs(params), params)
    return plan.vehicles[["vehicle_id", "colour"]]


def found_by_paint(vehicles: gpd.GeoDataFrame, matched_ids: tuple[int, ...]) -> dict[str, list[int]]:
    """``{paint: [found, moving trucks]}`` over the render's moving trucks (paint names from
    :data:`baseline.synth.materials.VEHICLE_COLOURS`): where the misses are, by how far the paint is
    from asphalt."""
    from baseline.synth.materials import VEHICLE_COLOURS

    names = list(VEHICLE_COLOURS)
    mt = moving_trucks(vehicles)
    found = np.isin(mt["vehicle_id"].to_numpy(), matched_ids)
    out: dict[str, list[int]] = {}
    for colour, hit in zip(mt["colour"].to_numpy(), found, strict=True):
        tally = out.setdefault(names[int(colour)], [0, 0])
        tally[0] += int(hit)
        tally[1] += 1
    return out


def paint_line(tallies: dict[str, list[int]]) -> str:
    """``white 0.86 (203/236), silver ...``, in the table's paint order."""
    from baseline.synth.materials import VEHICLE_COLOURS

    return ", ".join(f"{name} {t[0] / t[1]:.2f} ({t[0]}/{t[1]})" for name in VEHICLE_COLOURS
                     if (t := tallies.get(name)))


def bright_trucks(vehicles: gpd.GeoDataFrame) -> np.ndarray:
    """``vehicle_id`` of moving trucks whose paint stands out from asphalt (:func:`stands_out_from_asphalt`)."""
    from baseline.synth.materials import stands_out_from_asphalt

    mt = moving_trucks(vehicles)
    return mt["vehicle_id"].to_numpy()[stands_out_from_asphalt(mt["colour"].to_numpy())]


def score_corridor(seed: int, net: TruckNet | None = None,
                   params: TruckParams | None = None
                   ) -> tuple[TruckScore, float, tuple[int, int], dict[str, list[int]]]:
    """Detect on one corridor render (its road mask given) and score against its truth."""
    from baseline.synth.corridor import CorridorParams, render_corridor
    from baseline.synth.sensors import SENTINEL2

    scene = render_corridor(CorridorParams.with_random_sun(seed))
    road = rasterize_roads(scene.roads, scene.transform, scene.valid.shape)
    started = time.perf_counter()
    det = detect_moving_trucks(scene.reflectance, scene.valid, scene.transform, SENTINEL2.time_offsets_s,
                               road_mask=road, crs=scene.grid.crs, net=net, params=params)
    seconds = time.perf_counter() - started
    score = score_trucks(det, scene.vehicles)
    bright = bright_trucks(scene.vehicles)
    return score, seconds, (int(np.isin(bright, score.matched_ids).sum()), len(bright)), \
        found_by_paint(scene.vehicles, score.matched_ids)


def score_seed(seed: int, cache: Path, net: TruckNet | None = None,
               params: TruckParams | None = None
               ) -> tuple[TruckScore, float, tuple[int, int], dict[str, list[int]]]:
    """Detect on one render and score against its truth.

    Returns the score, the detection seconds, (bright trucks found, bright trucks) and
    :func:`found_by_paint`.
    """
    scene = rendered(seed, cache)
    from baseline.synth.sensors import SENTINEL2

    road = rasterize_roads(scene["roads"], scene["transform"], scene["valid"].shape)
    started = time.perf_counter()
    det = detect_moving_trucks(scene["reflectance"], scene["valid"], scene["transform"], SENTINEL2.time_offsets_s,
                               road_mask=road, crs=scene["crs"], net=net, params=params)
    seconds = time.perf_counter() - started
    score = score_trucks(det, scene["vehicles"])
    bright = bright_trucks(scene["vehicles"])
    return score, seconds, (int(np.isin(bright, score.matched_ids).sum()), len(bright)), \
        found_by_paint(scene["vehicles"], score.matched_ids)


def _loose_detections(reflectance, valid, transform, crs, roads, net=None) -> gpd.GeoDataFrame:
    """Detections with low thresholds and no suppression (filtered afterwards by the grid)."""
    from dataclasses import replace

    from baseline.detect.s2_trucks import WIDTH_M
    from baseline.synth.sensors import SENTINEL2

    loose = replace(TruckParams(), min_score=0.03, min_area_px=0.0, nms_m=0.0)
    road = rasterize_roads(roads, transform, valid.shape)
    det = detect_moving_trucks(reflectance, valid, transform, SENTINEL2.time_offsets_s, road_mask=road, crs=crs,
                               params=loose, net=net)
    det["area_px"] = det["length_m"] * WIDTH_M / 100.0
    return det


def tuning_grid(city_seeds: list[int], corridor_seeds: list[int], cache: Path, net: TruckNet | None = None) -> None:
    """F1 for a grid of ``min_score`` x ``min_area_px``, pooled over the city and over the corridor tuning
    seeds (how the shipped thresholds were chosen, on city seeds 7, 101-105 and corridor seeds 8000-8009
    only), ranked by their mean: detect once with low thresholds, then filter and suppress.

    For a network with a centre head the score is the peak's heat (0 to 1), so ``min_score`` spans
    0.10-0.60, and the suppression radius ``nms_m`` is searched too (8, 11 or 15 m): the head is
    there to keep trucks a couple of pixels apart.
    """
    from baseline.detect.s2_trucks import _nms
    from baseline.synth.corridor import CorridorParams, render_corridor

    centre = (net or load_truck_net()).centre
    score_range = np.arange(0.10, 0.601, 0.05) if centre else np.arange(0.04, 0.161, 0.01)
    nms_range = (8.0, 11.0, 15.0) if centre else (TruckParams().nms_m,)
    runs: dict[str, list] = {"city": [], "corridor": []}
    for seed in city_seeds:
        sc = rendered(seed, cache)
        runs["city"].append((_loose_detections(sc["reflectance"], sc["valid"], sc["transform"], sc["crs"],
                                                sc["roads"], net), sc["vehicles"]))
    for seed in corridor_seeds:
        sc = render_corridor(CorridorParams.with_random_sun(seed))
        runs["corridor"].append((_loose_detections(sc.reflectance, sc.valid, sc.transform, sc.grid.crs, sc.roads, net),
                                 sc.vehicles))
    results = []
    for min_score in score_range:
        for min_area in np.arange(0.0, 0.41, 0.05):
            for nms_m in nms_range:
                f1s = []
                for kind in ("city", "corridor"):
                    scores = []
                    for det, vehicles in runs[kind]:
                        kept = det[(det["score"] >= min_score) & (det["area_px"] >= min_area)]
                        kept = kept.sort_values("score", ascending=False).reset_index(drop=True)
                        scores.append(score_trucks(kept[_nms(kept.geometry.values, nms_m)], vehicles))
                    p = pooled(scores) if scores else None
                    f1s.append((p.f1 or 0.0, p.precision or 0.0, p.recall or 0.0) if p else (0.0, 0.0, 0.0))
                results.append((float(np.mean([f[0] for f in f1s])), *f1s[0], *f1s[1], round(min_score, 2),
                                round(min_area, 2), nms_m))
    results.sort(reverse=True)
    print(" mean  city F1  prec recall  corr F1  prec recall  min_score  min_area_px  nms_m")
    for r in results[:12]:
        print(f"{r[0]:5.3f} {r[1]:8.3f} {r[2]:5.3f} {r[3]:6.3f} {r[4]:8.3f} {r[5]:5.3f} {r[6]:6.3f} "
              f"{r[7]:10.2f} {r[8]:12.2f} {r[9]:6.0f}")


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list[tuple[str, TruckScore, float | None, tuple[int, int]]]) -> None:
    """One line per seed and the pooled line; ``bright`` is recall over white, silver and red trucks."""
    print(f"{'seed':>7} {'trucks':>6} {'det':>4} {'tp':>3} {'fp':>3} {'fn':>3} {'prec':>5} {'recall':>6} {'F1':>5} "
          f"{'bright':>9} {'spd MAE':>7} {'spd bias':>8} {'spd MAPE':>8} {'hdg err':>7} {'sec':>5}  fp near")
    for name, s, sec, (found, bright) in rows:
        print(f"{name:>7} {s.n_truth:>6} {s.n_pred:>4} {s.tp:>3} {s.fp:>3} {s.fn:>3} {_fmt(s.precision):>5} "
              f"{_fmt(s.recall):>6} {_fmt(s.f1):>5} {f'{found}/{bright}':>9} {_fmt(s.speed_mae_kmh, 1):>7} "
              f"{_fmt(s.speed_bias_kmh, 1):>8} {_fmt(s.speed_mape):>8} {_fmt(s.heading_mae_deg, 1):>7} "
              f"{_fmt(sec, 1):>5}  {s.fp_near}")


def real_crop(png: Path | None, net: TruckNet | None = None, params: TruckParams | None = None) -> dict | None:
    """Detections on the real motorway crop and their share on the image-derived carriageway."""
    folder = DATA / REAL_FOLDER
    if not (folder / REAL_FILE).is_file():
        print(f"real crop: {folder} not present, skipped")
        return None
    from baseline.ingest import ArchiveSource

    with tempfile.TemporaryDirectory() as tmp:
        (scene,) = ArchiveSource(folder, describe=REAL_DESCRIBE, cache_dir=Path(tmp)).scenes()
        started = time.perf_counter()
        table = trucks_table(scene, None, params=params, net=net)
        seconds = time.perf_counter() - started
        refl, valid = scene_reflectance(scene)
    road = derive_carriageway(refl, valid)
    inv = ~scene.transform
    cols, rows = inv * (table.geometry.x.to_numpy(), table.geometry.y.to_numpy())
    on = on_carriageway(np.asarray(rows), np.asarray(cols), road)
    out = {
        "scene_id": scene.scene_id, "detections": len(table), "on_carriageway": int(on.sum()),
        "on_carriageway_fraction": float(on.mean()) if len(table) else None,
        "carriageway_axis_deg": road.angle_deg, "carriageway_pixels": int(road.mask.sum()),
        "speed_kmh_median": float(table["speed_kmh"].median()) if len(table) else None,
        "speed_kmh_range": [float(table["speed_kmh"].min()), float(table["speed_kmh"].max())] if len(table) else None,
        "seconds": round(seconds, 2),
    }
    print(f"real crop {scene.scene_id}: {out['detections']} moving trucks, {out['on_carriageway']} on the "
          f"image-derived carriageway ({_fmt(out['on_carriageway_fraction'])}); speeds median "
          f"{_fmt(out['speed_kmh_median'], 0)} km/h, range {out['speed_kmh_range']}; {seconds:.1f} s")
    headings = np.round(table["heading_deg"].to_numpy()).astype(int).tolist()
    print(f"  headings (deg): {headings}")
    if png is not None:
        write_overlay(png, refl, road.mask, np.asarray(rows), np.asarray(cols), on, table)
        print(f"  overlay: {png}")
    return out


def write_overlay(path: Path, refl: np.ndarray, road: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                  on: np.ndarray, table: gpd.GeoDataFrame, zoom: int = 8) -> None:
    """True-colour image x ``zoom``, the derived carriageway outlined, detections with their heading."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    rgb = np.stack([refl[2], refl[1], refl[0]], axis=-1)
    img = (np.clip((rgb / 0.35) ** (1 / 1.5), 0, 1) * 255).astype(np.uint8)
    edge = road & ~ndimage.binary_erosion(road)
    img[edge] = (img[edge] * 0.4 + np.array([255, 0, 255]) * 0.6).astype(np.uint8)
    h, w = road.shape
    im = Image.fromarray(img).resize((w * zoom, h * zoom), Image.NEAREST)
    draw = ImageDraw.Draw(im)
    for r, c, ok, heading in zip(rows, cols, on, table["heading_deg"].to_numpy(), strict=True):
        x, y = c * zoom, r * zoom
        colour = (255, 255, 0) if ok else (255, 0, 0)
        draw.ellipse([x - 6, y - 6, x + 6, y + 6], outline=colour, width=2)
        t = np.radians(heading)
        draw.line([x, y, x + 14 * np.sin(t), y - 14 * np.cos(t)], fill=colour, width=2)
    draw.text((4, 4), "S2 L2A crop (Copernicus Sentinel data, via hfisser/S2TD); magenta: derived carriageway",
              fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=seed_list_arg, default=REPORT_SEEDS,
                    help="city render seeds to score (not the training or tuning ones), e.g. 2025-2031 or 7,101-105")
    ap.add_argument("--corridor-seeds", type=seed_list_arg, default=CORRIDOR_SEEDS,
                    help="corridor render seeds to score")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "s2-trucks-scores", help="renders kept here")
    ap.add_argument("--png", type=Path, default=None, help="overlay of the real crop's detections")
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    ap.add_argument("--model", type=Path, default=None,
                    help="model folder to score (default: the shipped models/s2-trucks/<version>)")
    ap.add_argument("--no-real", action="store_true", help="skip the real crop")
    ap.add_argument("--grid", action="store_true",
                    help="print the threshold grid on --seeds and --corridor-seeds (give the tuning seeds)")
    args = ap.parse_args()
    folder = str(args.model) if args.model else None
    net, params = load_truck_net(folder), model_params(folder)
    city_seeds, corridor_seeds = args.seeds, args.corridor_seeds
    if args.grid:
        tuning_grid(city_seeds, corridor_seeds, args.cache, net)
        return
    record: dict = {}
    for kind, seeds, scorer in (("city", city_seeds, lambda s: score_seed(s, args.cache, net, params)),
                                ("corridor", corridor_seeds, lambda s: score_corridor(s, net, params))):
        rows, scores, bright, paints = [], [], [0, 0], {}
        for seed in seeds:
            score, seconds, (found, n_bright), by_paint = scorer(seed)
            rows.append((str(seed), score, seconds, (found, n_bright)))
            scores.append(score)
            bright = [bright[0] + found, bright[1] + n_bright]
            for name, (f, n) in by_paint.items():
                tally = paints.setdefault(name, [0, 0])
                tally[0] += f
                tally[1] += n
        if rows:
            rows.append(("all", pooled(scores), None, (bright[0], bright[1])))
            print(f"{kind} renders")
            print_table(rows)
            print(f"  recall by paint: {paint_line(paints)}")
            record[kind] = {name: s.as_dict() | {"bright_found": b[0], "bright_trucks": b[1],
                                                 "bright_recall": b[0] / b[1] if b[1] else None, "seconds": sec}
                            for name, s, sec, b in rows}
            record[kind]["all"]["found_by_paint"] = paints
    record["real_crop"] = None if args.no_real else real_crop(args.png, net, params)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(json_ready(record), indent=2) + "\n")


if __name__ == "__main__":
    main()
