"""Score the Sentinel-2 built-up network per H3 res-9 cell on held-out renders.

Usage::

    .venv/bin/python scripts/score_s2_builtup.py [--json models/s2-builtup/1.0.0/metrics.json] [--model DIR]

Splits (``scripts/s2_builtup_data.py`` defines them and renders the scenes):

- ``helsinki_test``: the south-east block of central Helsinki (x >= 385850,
  y < 6672150, EPSG:32635), at least 300 m from every pixel the network was
  fitted on, in renders whose seeds (2100-2105) and suns were never trained on;
- ``helsinki3d``: the Helsinki 3D city model's real footprints and measured
  heights (Kalasatama, Viikki), moved onto the extract as
  ``scripts/score_helsinki3d.py`` does; the whole scene is held out. Skipped
  when ``../shared/data`` is absent;
- ``helsinki_train_region`` (reference only, *not* held out): the train region
  of the same test renders: new seeds and suns, but footprints the network was
  fitted on; the gap to ``helsinki_test`` shows how much it memorised.

A cell counts when its hexagon lies wholly inside the split's region (and the
image; half a pixel of slack, so a hexagon counts when none of the pixel
centres it holds lies outside) and at least half of it is valid; its height counts when its true
built-up fraction is at least 0.05. Cell built-up fraction is the mean over
valid pixels, cell height the fraction-weighted mean of pixel heights
(:func:`baseline.aggregate.builtup.builtup_cells`), for prediction and truth
alike (the truth from the render's footprints rasterised at 1 m). Per-pixel
errors are over the region's valid pixels (height: fraction-weighted, where
the true fraction is at least 0.05). Targets (issue 4): cell fraction MAE
<= 0.05, cell height MAE <= 2.0 m.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
import torch
from affine import Affine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from s2_builtup_data import (  # noqa: E402
    DATA,
    H3D_SCENES,
    TEST_SCENES,
    city_sample,
    helsinki3d_available,
    helsinki3d_sample,
    regions,
    test_box,
)

from baseline.aggregate.builtup import builtup_cells, cell_polygons, pixel_cells  # noqa: E402
from baseline.detect.s2_builtup import builtup_maps, load_builtup_net  # noqa: E402

RESOLUTION = 9
MIN_VALID = 0.5
MIN_HEIGHT_FRACTION = 0.05
LIMITS = {"fraction_mae": 0.05, "height_mae_m": 2.0}


def score_sample(sample: dict[str, Any], region_box: tuple[float, float, float, float] | None,
                 region_mask: np.ndarray | None, net: Any) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Cells (prediction beside truth) of one render wholly inside ``region_box`` (and the image), and the
    region's per-pixel errors. ``region_box`` None is the whole image."""
    refl, valid = sample["reflectance"], sample["valid"]
    transform = Affine(sample["gsd"], 0.0, sample["x0"], 0.0, -sample["gsd"], sample["y0"])
    crs = f"EPSG:{sample['epsg']}"
    frac, height = builtup_maps(refl, valid, *sample["sun"], net=net)
    cells = pixel_cells(transform, valid.shape, crs, RESOLUTION)
    pred = builtup_cells(frac, height, valid, transform, crs, RESOLUTION, cells=cells)
    true = builtup_cells(sample["fraction"], sample["height"], valid, transform, crs, RESOLUTION, cells=cells)
    h, w = valid.shape
    image = shapely.box(sample["x0"], sample["y0"] - h * sample["gsd"], sample["x0"] + w * sample["gsd"], sample["y0"])
    area = image if region_box is None else shapely.intersection(image, shapely.box(*region_box))
    # pixel centres lie half a pixel inside the box's edges: a hexagon poking out by less holds none outside
    area = area.buffer(0.5 * sample["gsd"], join_style="mitre")
    inside = np.array([area.contains(p) for p in cell_polygons(true["h3"].to_numpy(), crs)], dtype=bool)
    keep = inside & (true["valid_fraction"].to_numpy() >= MIN_VALID)
    table = pd.DataFrame({
        "scene": sample["tag"], "h3": true["h3"], "valid_fraction": true["valid_fraction"],
        "true_fraction": true["builtup_fraction"], "pred_fraction": pred["builtup_fraction"],
        "true_height_m": true["height_mean_m"], "pred_height_m": pred["height_mean_m"],
        "true_volume_m3": true["built_volume_m3"], "pred_volume_m3": pred["built_volume_m3"],
    })[keep].reset_index(drop=True)
    m = valid & (np.ones_like(valid) if region_mask is None else region_mask)
    tf, th = sample["fraction"][m], sample["height"][m]
    w_h = np.where(tf >= MIN_HEIGHT_FRACTION, tf, 0.0)
    pixels = {"fraction_err": frac[m] - tf, "height_err": height[m] - th, "height_w": w_h}
    return table, pixels


def summarise(tables: list[pd.DataFrame], pixels: list[dict[str, np.ndarray]]) -> dict[str, Any]:
    """Cell and pixel errors pooled over a split's renders."""
    t = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    out: dict[str, Any] = {"scenes": len(tables), "cells": len(t),
                           "distinct_cells": int(t["h3"].nunique()) if len(t) else 0}
    if len(t):
        ef = t["pred_fraction"] - t["true_fraction"]
        out |= {"fraction_mae": float(ef.abs().mean()), "fraction_bias": float(ef.mean()),
                "true_fraction_mean": float(t["true_fraction"].mean())}
        hc = t[t["true_fraction"] >= MIN_HEIGHT_FRACTION]
        eh = hc["pred_height_m"].fillna(0.0) - hc["true_height_m"]
        out |= {"height_cells": len(hc)}
        if len(hc):
            out |= {"height_mae_m": float(eh.abs().mean()), "height_bias_m": float(eh.mean()),
                    "height_rmse_m": float(np.sqrt((eh**2).mean())), "true_height_mean_m": float(hc["true_height_m"].mean())}
        vol = t["true_volume_m3"].sum()
        out["volume_ratio"] = float(t["pred_volume_m3"].sum() / vol) if vol > 0 else None
    fe = np.concatenate([p["fraction_err"] for p in pixels]) if pixels else np.zeros(0)
    he = np.concatenate([p["height_err"] for p in pixels]) if pixels else np.zeros(0)
    hw = np.concatenate([p["height_w"] for p in pixels]) if pixels else np.zeros(0)
    out["pixels"] = int(fe.size)
    if fe.size:
        out["pixel_fraction_mae"] = float(np.abs(fe).mean())
        out["pixel_fraction_bias"] = float(fe.mean())
    if hw.sum() > 0:
        out["pixel_height_mae_m"] = float((np.abs(he) * hw).sum() / hw.sum())
        out["pixel_height_bias_m"] = float((he * hw).sum() / hw.sum())
    out["cell_table"] = [
        {k: (round(float(v), 4) if isinstance(v, float | np.floating) else v) for k, v in row.items()}
        for row in t.to_dict("records")
    ]
    return out


def run(model: str | None, data: Path) -> dict[str, Any]:
    """Every split's summary."""
    net = load_builtup_net(model)
    splits: dict[str, tuple[list, list]] = {"helsinki_test": ([], []), "helsinki_train_region": ([], [])}
    for seed, e, a in TEST_SCENES:
        s = city_sample(seed, e, a)
        reg = regions(s["x0"], s["y0"], s["valid"].shape, s["gsd"])
        t, p = score_sample(s, test_box(), reg["test"], net)
        splits["helsinki_test"][0].append(t)
        splits["helsinki_test"][1].append(p)
        # the train region is not a box; score its cells by pixel membership instead
        t, p = score_sample(s, None, reg["train"], net)
        transform = Affine(s["gsd"], 0.0, s["x0"], 0.0, -s["gsd"], s["y0"])
        cells = pixel_cells(transform, s["valid"].shape, f"EPSG:{s['epsg']}", RESOLUTION)
        outside = set(cells[~reg["train"]].ravel())
        splits["helsinki_train_region"][0].append(t[~t["h3"].isin(outside)].reset_index(drop=True))
        splits["helsinki_train_region"][1].append(p)
    if helsinki3d_available(data):
        splits["helsinki3d"] = ([], [])
        for area, seed, e, a in H3D_SCENES:
            s = helsinki3d_sample(area, seed, e, a, data)
            t, p = score_sample(s, None, None, net)
            splits["helsinki3d"][0].append(t)
            splits["helsinki3d"][1].append(p)
    else:
        print(f"skipping helsinki3d: {data} has no helsinki_3d_buildings", file=sys.stderr)
    out = {name: summarise(*parts) for name, parts in splits.items()}
    if "helsinki3d" in out:
        for area in ("kalasatama", "viikki"):
            idx = [i for i, sc in enumerate(H3D_SCENES) if sc[0] == area]
            out[f"helsinki3d_{area}"] = summarise([splits["helsinki3d"][0][i] for i in idx],
                                                  [splits["helsinki3d"][1][i] for i in idx])
    return out


def _fmt(v: object, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def report(scores: dict[str, Any]) -> None:
    """Print one line per split and the targets."""
    print("split | scenes | cells (distinct) | fraction MAE | bias | height cells | height MAE m | bias m | "
          "RMSE m | volume ratio | pixel fraction MAE | pixel height MAE m")
    for name, s in scores.items():
        print(" | ".join([name, str(s["scenes"]), f"{s['cells']} ({s['distinct_cells']})", _fmt(s.get("fraction_mae")),
                          _fmt(s.get("fraction_bias")), str(s.get("height_cells", 0)),
                          _fmt(s.get("height_mae_m"), 2), _fmt(s.get("height_bias_m"), 2),
                          _fmt(s.get("height_rmse_m"), 2), _fmt(s.get("volume_ratio"), 2),
                          _fmt(s.get("pixel_fraction_mae")), _fmt(s.get("pixel_height_mae_m"), 2)]))
    print("\nper cell (held-out splits): scene, cell, true / predicted fraction, true / predicted height m")
    for name in ("helsinki_test", "helsinki3d"):
        for row in scores.get(name, {}).get("cell_table", []):
            print(f"  {row['scene']} {row['h3']}: {row['true_fraction']:.3f} / {row['pred_fraction']:.3f}, "
                  f"{_fmt(row['true_height_m'], 1)} / {_fmt(row['pred_height_m'], 1)}")
    print("\nagainst the targets (held-out splits):")
    for name in ("helsinki_test", "helsinki3d"):
        s = scores.get(name)
        if not s:
            continue
        for key, limit in LIMITS.items():
            v = s.get(key)
            verdict = "no cells" if v is None else ("met" if v <= limit else f"NOT met (by {v - limit:.3f})")
            print(f"  {name} {key}: {_fmt(v)} (<= {limit}): {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model folder (default: the shipped models/s2-builtup/1.0.0)")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (Helsinki 3D city model)")
    ap.add_argument("--json", type=Path, default=None, help="also write the scores here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    scores = run(args.model, args.data)
    report(scores)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(scores, indent=2) + "\n")


if __name__ == "__main__":
    main()
