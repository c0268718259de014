"""Score the shipped building model on the real SpaceNet-4 Atlanta chip (WorldView-2 panchromatic).

The chip (``../shared/data/spacenet_solaris/imagery/sample_geotiff.tif``) is
900 x 900 uint16 panchromatic digital numbers at 0.5 m (EPSG:32616): wooded
suburban Atlanta in winter, with 43 labelled building footprints
(``labels/geotiff_labels.geojson``). The model (``models/buildings-unet``)
takes blue, green, red and near-infrared reflectance at 0.3 m and was trained
on synthetic renders of central Helsinki only, so this is doubly out of its
distribution: real imagery, and one panchromatic band standing in for four.

How the chip becomes the model's input (:func:`pan_to_model_input`), fixed in
advance and not tuned on the scores:

1. resample 0.5 m -> 0.3 m (900 -> 1500 pixels, the same ground extent) with
   the project's resampler (``baseline.detect.runtime.resample``: bilinear up);
2. the file has no radiometric calibration (no gain, offset or sun angle), so
   reflectance is unknown. Two ways to fill the model's four bands, both fixed
   before scoring (``--pan-input``):

   - ``grey`` (the default): every band is the same image, the pan DN scaled so
     that its mean over the chip equals the card's band means weighted by the
     panchromatic response (``baseline.train.augment.PAN_WEIGHTS``). This is
     exactly what the training's panchromatic draw shows a model trained with
     ``--augment sensor``: one broad-band grey in every band.
   - ``card-means``: band ``k`` is the pan image scaled so that its mean equals
     the card's mean for that band (``band_k = DN / mean(DN) * card_mean_k``);
     the bands are proportional, not equal.

   Either way all four bands carry one spatial pattern; real multispectral
   imagery would differ between bands (vegetation is dark in blue and red and
   bright in near-infrared), so colour cues the model learned are absent.

The detector runs through the project's own path
(``baseline.detect.infer.detect_buildings``: the card's chip size and overlap,
maps stitched over the whole chip, the card's post-processing). No sun angles
are given (the file carries none), so heights are the learned ones; footprints
do not depend on the sun. Footprints are scored against all 43 labels with
``baseline.evaluate.building_metrics`` (optimal one-to-one matching at IoU >= 0.5).

Fine-tuning on half the chip (``--finetune-minutes M``, off by default): a
spatial two-fold split (``scripts/atlanta_split.py``) cuts the chip at its
middle easting; each fold writes its training half as a labelled-raster folder
(the other half and a ``--buffer-m`` strip beside the line are no-data), runs
the project's ``baseline train buildings --init-from`` path on it
(:func:`baseline.train.buildings.train_buildings`: the same sampler,
augmentation, loss, loop and post-processing tuning, on the training half
only) for ``M`` minutes of CPU wall time (or exactly
``--finetune-iterations``), and scores the fine-tuned and the shipped model on
the other half. Weights go under ``--out`` (a temporary folder by default),
never into ``models/``. The pooled line sums both folds, so every labelled
building is scored exactly once, by a model that never saw its label.

    .venv/bin/python scripts/score_spacenet_atlanta.py
    .venv/bin/python scripts/score_spacenet_atlanta.py --png /tmp/atlanta.png --json /tmp/atlanta.json
    .venv/bin/python scripts/score_spacenet_atlanta.py --version 1.0.0 --pan-input card-means
    .venv/bin/python scripts/score_spacenet_atlanta.py --finetune-minutes 8 --json /tmp/atlanta-ft.json

Imagery and labels: SpaceNet (CC BY-SA 4.0), via CosmiQ/solaris sample data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: `scripts.atlanta_split` sits beside it
    sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
IMAGE = Path("spacenet_solaris/imagery/sample_geotiff.tif")
LABELS = Path("spacenet_solaris/labels/geotiff_labels.geojson")
MODEL = "buildings-unet"
PAN_INPUTS = ("grey", "card-means")
ATTRIBUTION = "SpaceNet-4 Atlanta, WorldView-2 pan (CC BY-SA 4.0)"
F1_AIM = 0.6


@dataclass(frozen=True)
class PanChip:
    """The panchromatic chip as read: DN (h, w), validity, grid and CRS."""

    dn: np.ndarray
    valid: np.ndarray
    transform: Affine
    crs: CRS
    gsd_m: float


@dataclass(frozen=True)
class ModelInput:
    """The chip as the model's input: reflectance-like (4, h, w) float32 at ``gsd_m``, with its grid."""

    image: np.ndarray
    valid: np.ndarray
    transform: Affine
    crs: CRS
    gsd_m: float
    bands: tuple[str, ...]


def load_chip(data: Path = DATA) -> PanChip:
    """Read the panchromatic GeoTIFF; valid where DN differs from the file's no-data (0)."""
    with rasterio.open(data / IMAGE) as src:
        if src.count != 1:
            raise ValueError(f"{IMAGE}: expected one panchromatic band, found {src.count}")
        dn = src.read(1)
        nodata = src.nodata if src.nodata is not None else 0
        gsd = abs(src.transform.a)
        return PanChip(dn=dn, valid=dn != nodata, transform=src.transform, crs=CRS.from_user_input(src.crs),
                       gsd_m=float(gsd))


def load_labels(data: Path = DATA) -> gpd.GeoDataFrame:
    """The 43 building footprints (EPSG:32616), with a ``truncated`` flag for those cut by the chip edge."""
    labels = gpd.read_file(data / LABELS)
    cut = labels["truncated"].fillna(0).astype(int).to_numpy() != 0 if "truncated" in labels else False
    out = gpd.GeoDataFrame({"truncated": np.zeros(len(labels), dtype=bool) | cut},
                           geometry=labels.geometry.values, crs=labels.crs)
    return out[out.geometry.notna()].reset_index(drop=True)


def pan_to_model_input(chip: PanChip, band_means: list[float], bands: list[str], gsd_m: float = 0.3,
                       mode: str = "card-means") -> ModelInput:
    """The model's input from the pan chip: resampled to ``gsd_m``, one band per model band (see module doc).

    ``card-means``: ``band_k = DN / mean(DN over valid pixels) * band_means[k]``;
    ``grey``: every band ``DN / mean(DN) * sum_k(PAN_WEIGHTS[k] * band_means[k])``.
    Clipped at the project's reflectance ceiling; the grid keeps the chip's
    ground extent (``round(size * chip.gsd_m / gsd_m)`` pixels) and top-left corner.
    """
    from baseline.core.chips import REFLECTANCE_MAX
    from baseline.detect.runtime import resample
    from baseline.train.augment import PAN_WEIGHTS

    if mode not in PAN_INPUTS:
        raise ValueError(f"pan input {mode!r}: one of {', '.join(PAN_INPUTS)}")
    if mode == "grey":
        weights = PAN_WEIGHTS if len(band_means) == len(PAN_WEIGHTS) else [1.0 / len(band_means)] * len(band_means)
        grey_mean = float(np.dot(weights, band_means))
        band_means = [grey_mean] * len(band_means)

    h = round(chip.dn.shape[0] * chip.gsd_m / gsd_m)
    w = round(chip.dn.shape[1] * chip.gsd_m / gsd_m)
    pan = resample(chip.dn.astype(np.float32)[None], (h, w))[0]
    valid = resample(chip.valid.astype(np.float32)[None], (h, w))[0] > 0.5
    mean = float(pan[valid].mean())
    means = np.asarray(band_means, dtype=np.float32)[:, None, None]
    image = np.minimum(pan[None] / np.float32(mean) * means, np.float32(REFLECTANCE_MAX))
    image = np.where(valid[None], image, np.float32(0.0)).astype(np.float32)
    t = chip.transform
    transform = Affine(gsd_m if t.a > 0 else -gsd_m, 0.0, t.c, 0.0, -gsd_m if t.e < 0 else gsd_m, t.f)
    return ModelInput(image=image, valid=valid, transform=transform, crs=chip.crs, gsd_m=gsd_m, bands=tuple(bands))


def make_chips(inp: ModelInput, chip_px: int, overlap_px: int, scene_id: str = "spacenet-atlanta-pan") -> list:
    """The input cut into the model's overlapping chips (one pixel frame), as preprocess cuts a tile."""
    from baseline.core.chips import Chip, ChipWindow, plan_windows

    rows, cols = inp.valid.shape
    chips = []
    for w in plan_windows(rows, cols, chip_px, overlap_px):
        pixels = inp.image[:, w.row: w.row + w.height, w.col: w.col + w.width]
        valid = inp.valid[w.row: w.row + w.height, w.col: w.col + w.width]
        if w.height < chip_px or w.width < chip_px:  # pad edge chips to the model's size
            pad = ((0, 0), (0, chip_px - w.height), (0, chip_px - w.width))
            pixels, valid = np.pad(pixels, pad), np.pad(valid, pad[1:])
        chips.append(Chip(scene_id=scene_id, window=ChipWindow(w.row, w.col, w.height, w.width, w.core),
                          pixels=np.ascontiguousarray(pixels), valid=valid,
                          transform=inp.transform @ Affine.translation(w.col, w.row), gsd_m=inp.gsd_m))
    return chips


def detect(inp: ModelInput, model: Any, device: str = "cpu", batch_size: int = 4) -> gpd.GeoDataFrame:
    """Building footprints the model finds in ``inp`` (the project's detect path; no sun: learned heights)."""
    from baseline.detect.infer import detect_buildings

    tiling = model.card.get("tiling", {})
    chips = make_chips(inp, int(tiling.get("chip_px", 768)), int(tiling.get("overlap_px", 192)))
    return detect_buildings(chips, model, crs=inp.crs, sun_elevation_deg=None, sun_azimuth_deg=None,
                            device=device, batch_size=batch_size)


def labels_touched(pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame) -> np.ndarray:
    """Which labels any detection overlaps at all: found but cut short, as against not found."""
    touched = np.zeros(len(truth), dtype=bool)
    if len(pred) and len(truth):
        t_idx, _ = shapely.STRtree(pred.geometry.values).query(truth.geometry.values, predicate="intersects")
        touched[t_idx] = True
    return touched


def score_chip(data: Path = DATA, iou: float = 0.5, device: str = "cpu", version: str | None = None,
               pan_input: str = "grey", models_dir: Path | None = None) -> dict[str, Any]:
    """Load, convert, detect and score the chip; the scores plus the tables and input (for a figure).

    ``version`` None is the newest shipped ``buildings-unet``; ``models_dir`` None the project's.
    """
    from baseline.detect.weights import load_model
    from baseline.evaluate import building_metrics
    from baseline.evaluate.matching import match_buildings

    t0 = time.perf_counter()
    model = load_model(MODEL, version, models_dir)
    chip, labels = load_chip(data), load_labels(data)
    inp = pan_to_model_input(chip, model.mean, model.bands, model.gsd_m, mode=pan_input)
    t1 = time.perf_counter()
    pred = detect(inp, model, device=device)
    t2 = time.perf_counter()
    truth = labels.to_crs(pred.crs) if labels.crs != pred.crs else labels
    metrics = building_metrics(pred, truth, iou, pred_name="detections", truth_name=str(LABELS))
    m = match_buildings(pred, truth, iou)
    full = ~truth["truncated"].to_numpy()
    found = np.zeros(len(truth), dtype=bool)
    found[m.truth] = True
    touched = labels_touched(pred, truth)
    covered = shapely.union_all(pred.geometry.values).area if len(pred) else 0.0
    metrics.update(
        labels_touched=int(touched.sum()), detected_share_of_chip=float(covered / (inp.valid.sum() * inp.gsd_m ** 2)),
        iou=iou, model=f"{model.name}@{model.version}", pan_input=pan_input,
        trained_with=(model.card.get("training") or {}).get("settings", {}).get("augment", "basic"), input_gsd_m=inp.gsd_m, input_shape=list(inp.image.shape),
        labels_truncated=int((~full).sum()), recall_untruncated=float(found[full].mean()) if full.any() else None,
        seconds={"load_convert": round(t1 - t0, 2), "detect": round(t2 - t1, 2), "score": round(time.perf_counter() - t2, 2)},
    )
    return {"metrics": metrics, "pred": pred, "truth": truth, "matches": m, "chip": chip}


def _rates(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("building_tp", "building_fp", "building_fn", "building_precision", "building_recall", "building_f1")
    return {k.removeprefix("building_"): metrics[k] for k in keys}


def _pooled(folds: list[dict[str, Any]], key: str) -> dict[str, Any]:
    from baseline.evaluate.metrics import precision_recall_f1

    tp, fp, fn, touched = (sum(f[key][k] for f in folds) for k in ("tp", "fp", "fn", "touched"))
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1, "touched": touched}


def finetune_and_score(data: Path, out: Path, *, minutes: float, iterations: int | None, lr: float, seed: int,
                       buffer_m: float, iou: float = 0.5, pan_input: str = "grey", version: str | None = None,
                       models_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Two spatial folds: fine-tune the shipped model on one half, score it and the shipped model on the other.

    Returns per fold and pooled precision, recall and F1 for both models, and
    what each fine-tune did (iterations, seconds, labels and pixels it saw).
    """
    from baseline.detect.weights import load_model, load_model_dir
    from baseline.evaluate import building_metrics
    from baseline.train.buildings import BuildingTrainSettings, train_buildings
    from scripts.atlanta_split import chip_folds, half_of, write_training_folder

    shipped = load_model(MODEL, version, models_dir)
    chip, labels = load_chip(data), load_labels(data)
    inp = pan_to_model_input(chip, shipped.mean, shipped.bands, shipped.gsd_m, mode=pan_input)
    shipped_pred = detect(inp, shipped)
    folds = []
    for fold in chip_folds(inp.transform, inp.image.shape[2], buffer_m):
        root = out / f"train-{fold.train}"
        seen = write_training_folder(inp.image, inp.valid, inp.transform, inp.crs, labels, fold, root / "data")
        target = root / "models" / f"{MODEL}-atlanta-{fold.train}" / "0.0.1"
        steps = dict(epochs=1, iters_per_epoch=iterations) if iterations else dict(epochs=1000, iters_per_epoch=100)
        settings = BuildingTrainSettings(init_from=str(shipped.path), lr=lr, seed=seed,
                                         max_minutes=None if iterations else minutes, **steps)
        t0 = time.perf_counter()
        card = train_buildings([root / "data"], target, settings=settings, device="cpu", progress=progress)
        seconds = time.perf_counter() - t0
        tuned_pred = detect(inp, load_model_dir(target))
        truth = half_of(labels, fold, fold.test)
        scores = {}
        for name, pred in (("shipped", shipped_pred), ("finetuned", tuned_pred)):
            test_pred = half_of(pred, fold, fold.test)
            scores[name] = _rates(building_metrics(test_pred, truth, iou))
            scores[name]["touched"] = int(labels_touched(test_pred, truth).sum())
        # the fit on the half it learned from: against the test half, what generalises and what does not
        fit = _rates(building_metrics(half_of(tuned_pred, fold, fold.train), half_of(labels, fold, fold.train), iou))
        folds.append({
            "train": fold.train, "test": fold.test, "train_labels": seen["labels"], "test_labels": len(truth),
            "train_pixels": seen["pixels"], "iterations": card["training"]["iterations"],
            "seconds": round(seconds, 1), "weights": str(target), **scores, "finetuned_on_train_half": fit,
        })
    return {
        "model": f"{shipped.name}@{shipped.version}", "pan_input": pan_input, "iou": iou, "buffer_m": buffer_m,
        "lr": lr, "seed": seed, "minutes_budget": None if iterations else minutes, "iterations_asked": iterations,
        "folds": folds, "pooled": {k: _pooled(folds, k) for k in ("shipped", "finetuned")},
    }


def print_finetune(result: dict[str, Any]) -> None:
    """The fine-tune table: per fold and pooled, shipped against fine-tuned."""
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731

    def cell(r: dict[str, Any]) -> str:
        return (f"{fmt(r['precision'])} / {fmt(r['recall'])} / {fmt(r['f1'])} (tp {r['tp']}, fp {r['fp']}, "
                f"fn {r['fn']}; labels overlapped by any detection {r['touched']})")

    print(f"\nfine-tuned from {result['model']} on one half of the chip, scored on the other "
          f"({result['buffer_m']:g} m strip beside the line left out of training; IoU >= {result['iou']})")
    for f in result["folds"]:
        print(f"  train {f['train']} ({f['train_labels']} labels, {f['iterations']} iterations, {f['seconds']:.0f} s) "
              f"-> test {f['test']} ({f['test_labels']} labels)")
        print(f"    shipped    P / R / F1 {cell(f['shipped'])}")
        print(f"    fine-tuned P / R / F1 {cell(f['finetuned'])}")
        fit = f["finetuned_on_train_half"]
        print(f"    (fine-tuned on its own training half: F1 {fmt(fit['f1'])}, tp {fit['tp']}, fp {fit['fp']})")
    pooled = result["pooled"]
    print(f"  pooled over both test halves: shipped F1 {fmt(pooled['shipped']['f1'])}, "
          f"fine-tuned F1 {fmt(pooled['finetuned']['f1'])} ({cell(pooled['finetuned'])})")
    ok = pooled["finetuned"]["f1"] is not None and pooled["finetuned"]["f1"] >= F1_AIM
    print(f"  aim F1 >= {F1_AIM} after fine-tuning: {'met' if ok else 'NOT met'}")


def write_png(path: Path, chip: PanChip, pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, matches: Any,
              scale: int = 2) -> None:
    """An overlay on the pan chip: labels matched (green) and missed (yellow), detections matched (cyan) and false (red)."""
    from PIL import Image, ImageDraw

    dn = chip.dn.astype(np.float32)
    hi = float(np.percentile(dn[chip.valid], 99.5)) if chip.valid.any() else 1.0
    grey = (np.clip(dn / max(hi, 1.0), 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(grey).convert("RGB").resize((grey.shape[1] * scale, grey.shape[0] * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    inv = ~chip.transform

    def outline(geom: Any, colour: tuple[int, int, int], width: int) -> None:
        for poly in getattr(geom, "geoms", [geom]):
            xy = [tuple(v * scale for v in inv * (x, y)) for x, y in poly.exterior.coords]
            draw.line(xy, fill=colour, width=width)

    t_hit = set(matches.truth.tolist())
    p_hit = set(matches.pred.tolist())
    for i, g in enumerate(truth.geometry.values):
        outline(g, (0, 220, 0) if i in t_hit else (255, 220, 0), 3)
    for i, g in enumerate(pred.geometry.values):
        outline(g, (0, 200, 255) if i in p_hit else (255, 40, 40), 2)
    legend = ("labels: green matched, yellow missed; detections: cyan matched, red false (IoU 0.5). "
              + ATTRIBUTION)
    draw.rectangle((0, img.height - 18, img.width, img.height), fill=(0, 0, 0))
    draw.text((4, img.height - 15), legend, fill=(255, 255, 255))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    """Score the chip, print the figures, optionally write the overlay PNG and the scores as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="The shared data folder.")
    parser.add_argument("--iou", type=float, default=0.5)
    parser.add_argument("--png", type=Path, default=None, help="Write an overlay figure here.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the scores here.")
    parser.add_argument("--version", default=None, help=f"{MODEL} version (default: the newest under models/).")
    parser.add_argument("--models-dir", type=Path, default=None, help="Models folder (default: the project's).")
    parser.add_argument("--pan-input", choices=PAN_INPUTS, default="grey",
                        help="How the pan band fills the model's four (module doc).")
    parser.add_argument("--finetune-minutes", type=float, default=0.0,
                        help="Also fine-tune on each half and score on the other, this many CPU minutes a fold "
                             "(0, the default, skips it; module doc).")
    parser.add_argument("--finetune-iterations", type=int, default=None,
                        help="Fine-tune for exactly this many steps a fold instead (figures that repeat on any machine).")
    parser.add_argument("--lr", type=float, default=1e-3, help="Peak learning rate of the fine-tune [1e-3].")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the fine-tune's crops and augmentation [0].")
    parser.add_argument("--buffer-m", type=float, default=10.0,
                        help="Strip either side of the split line left out of training, metres [10].")
    parser.add_argument("--out", type=Path, default=None,
                        help="Where the fine-tune's folders and weights go (default: a new temporary folder).")
    args = parser.parse_args()
    if args.finetune_minutes < 0:
        parser.error(f"--finetune-minutes {args.finetune_minutes}: give 0 (no fine-tune) or more")
    if args.finetune_iterations is not None and args.finetune_iterations < 1:
        parser.error(f"--finetune-iterations {args.finetune_iterations}: give 1 or more")
    if not args.lr > 0:
        parser.error(f"--lr {args.lr}: a learning rate is above 0")
    if args.buffer_m < 0:
        parser.error(f"--buffer-m {args.buffer_m}: a strip width is 0 or more metres")
    if not 0 < args.iou <= 1:
        parser.error(f"--iou {args.iou}: an IoU threshold lies in (0, 1]")
    if not (args.data / IMAGE).is_file():
        sys.exit(f"{args.data / IMAGE} not found (give --data)")
    models_root = (args.models_dir or REPO / "models").resolve()
    if args.out is not None and args.out.resolve().is_relative_to(models_root):
        sys.exit(f"--out {args.out} is inside {models_root}: fine-tuned weights never go into models/")
    out = score_chip(args.data, args.iou, version=args.version, pan_input=args.pan_input, models_dir=args.models_dir)
    m = out["metrics"]
    print(f"SpaceNet-4 Atlanta chip, {m['model']} (trained on synthetic Helsinki renders, augmentation "
          f"{m['trained_with']!r}; real pan imagery)")
    filled = ("the same grey in every band" if args.pan_input == "grey"
              else "every band = pan scaled to the card's band mean")
    print(f"input: pan 0.5 m -> {m['input_gsd_m']} m, shape {m['input_shape']}, {filled}; "
          "no sun angles (learned heights)")
    print(f"labels {m['building_truth_count']} ({m['labels_truncated']} cut by the chip edge), "
          f"detections {m['building_pred_count']}")
    print(f"at IoU >= {args.iou}: tp {m['building_tp']}, fp {m['building_fp']}, fn {m['building_fn']}")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"precision {fmt(m['building_precision'])}, recall {fmt(m['building_recall'])}, "
          f"F1 {fmt(m['building_f1'])}, count error {fmt(m['building_count_error'])}, "
          f"mean IoU of matches {fmt(m['building_iou_mean'])}")
    print(f"recall on labels not cut by the edge: {fmt(m['recall_untruncated'])}")
    print(f"diagnostics: labels overlapped by any detection {m['labels_touched']} of {m['building_truth_count']}; "
          f"detections cover {m['detected_share_of_chip']:.1%} of the chip")
    ok = m["building_f1"] is not None and m["building_f1"] >= F1_AIM
    print(f"aim F1 >= {F1_AIM}: {'met' if ok else 'NOT met'}")
    print(f"seconds: {m['seconds']}")
    if args.png:
        write_png(args.png, out["chip"], out["pred"], out["truth"], out["matches"])
        print(f"overlay: {args.png}")
    record = {k: v for k, v in m.items() if k != "notes"} | {"notes": m["notes"]}
    if args.finetune_minutes > 0 or args.finetune_iterations:
        out_dir = args.out or Path(tempfile.mkdtemp(prefix="atlanta-finetune-"))
        result = finetune_and_score(args.data, out_dir, minutes=args.finetune_minutes,
                                    iterations=args.finetune_iterations, lr=args.lr, seed=args.seed,
                                    buffer_m=args.buffer_m, iou=args.iou, pan_input=args.pan_input,
                                    version=args.version, models_dir=args.models_dir)
        print_finetune(result)
        print(f"  fine-tuned weights (evaluation only): {out_dir}")
        record["finetune"] = result
    if args.json:
        args.json.write_text(json.dumps(record, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
