"""Score the vehicle model on the real KIT AIS Munich frames: shipped, then fine-tuned on a split.

Usage::

    .venv/bin/python scripts/score_kit_ais.py [--data DIR] [--out DIR] [--finetune-minutes N] [--json FILE]

What it does (every data choice is documented in ``scripts/kit_ais.py``):

1. reads the 9 frames and YOLO labels from ``../shared/data/kit_ais_munich_vehicles``
   (never copied into the repository), estimates each recording's GSD from the car
   boxes, resamples to the model's 0.3 m (area average), decodes sRGB and matches
   each band's mean to the model card's, uses 1.2 x red as the missing NIR, and
   writes each frame as a labelled-raster folder (GeoTIFF in an arbitrary local
   metric frame + ``vehicles.parquet``) in a temporary folder outside the repository;
2. run 1: the shipped ``vehicles-centernet`` on all frames, through the project's
   detect path, matched with ``baseline.evaluate`` (centres within 1.5 m, one-to-one,
   per class): precision, recall and F1 for cars and large vehicles, per frame and pooled;
3. run 2: splits *by recording* (the three frames of one recording overlap and show
   the same parked cars, so a frame-level split would leak): one recording is the
   test set, the last frame of the others is a validation frame, the rest train.
   Fine-tunes the shipped weights with the project's sampler, loss and loop for
   ``--finetune-minutes`` on the CPU, saves the weights under ``--out`` (never in
   ``models/``), and scores the fine-tuned and the shipped model on the test frames
   (and the validation frame, which shares its recording with training frames, so it
   checks the fit, not generalisation). ``--cross-validate`` repeats this with each
   recording as the test set in turn.

The score threshold is the card's (0.3) throughout; nothing is tuned on test frames.
Attribution: images "KIT AIS Data Set" (CC BY 3.0); labels from jekhor/aerial-cars-dataset
(no licence stated: evaluation only).
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

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from baseline.detect.weights import LoadedModel, default_models_dir, load_model  # noqa: E402
from baseline.evaluate.metrics import json_ready  # noqa: E402
from scripts import kit_ais  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_TEST = "MunichStreet02"
MODEL_NAME = "vehicles-centernet"
FT_NAME = "vehicles-centernet-kit"


@dataclass(frozen=True)
class Split:
    """Frame names of one split (by recording)."""

    test_group: str
    train: list[str]
    val: list[str]
    test: list[str]


def make_split(frames: list[kit_ais.KitFrame], test_group: str) -> Split:
    """Test = every frame of ``test_group``; val = the last remaining frame (natural order); train = the rest."""
    test = [f.name for f in frames if f.group == test_group]
    rest = [f.name for f in frames if f.group != test_group]
    if not test or len(rest) < 2:
        raise SystemExit(f"split on {test_group!r} leaves test {len(test)} frames, train+val {len(rest)}")
    return Split(test_group, rest[:-1], rest[-1:], test)


def resolve_group(frames: list[kit_ais.KitFrame], wanted: str) -> str:
    """The one recording whose id equals or starts with ``wanted``."""
    groups = sorted({f.group for f in frames})
    hits = [g for g in groups if g == wanted] or [g for g in groups if g.startswith(wanted)]
    if len(hits) != 1:
        raise SystemExit(f"--test-scene {wanted!r} matches {hits or 'nothing'}; recordings: {', '.join(groups)}")
    return hits[0]


def score_frames(model: LoadedModel, scenes: dict[str, kit_ais.KitScene], names: list[str], radius: float) -> dict[str, Any]:
    """Per-frame and pooled rates of ``model`` on the frames ``names``."""
    per_frame = [kit_ais.score_scene(model, scenes[n], radius_m=radius) for n in names]
    pooled = kit_ais.pool(per_frame)
    return {
        "model": model.label,
        "frames": names,
        "overall": {k: r.as_dict() for k, r in pooled.items()},
        "per_frame": {
            s.name: {**{k: r.as_dict() for k, r in s.rates.items()}, "predictions": s.predictions,
                     "dropped_on_dont_care": s.dropped_on_ignore, "seconds": round(s.seconds, 3), **s.extra}
            for s in per_frame
        },
    }


def _f(v: float | None) -> str:
    return "  n/a" if v is None else f"{v:5.3f}"


def rate_line(label: str, cls: str, r: dict[str, Any]) -> str:
    return (f"{label:<58} {cls:<5} {r['tp']:>4} {r['fp']:>4} {r['fn']:>4}   {_f(r['precision'])}  "
            f"{_f(r['recall'])}  {_f(r['f1'])}")


HEADER = f"{'run':<58} {'class':<5} {'tp':>4} {'fp':>4} {'fn':>4}   {'prec.':>5}  {'recall':>5}  {'F1':>5}"


def print_run(label: str, result: dict[str, Any], classes: tuple[str, ...] = ("car", "large", "all")) -> None:
    for cls in classes:
        print(rate_line(label, cls, result["overall"][cls]))


def print_per_frame(title: str, result: dict[str, Any]) -> None:
    print(f"\n{title} ({result['model']}), per frame:")
    print(HEADER)
    for name, r in result["per_frame"].items():
        print(rate_line(f"  {name}", "car", r["car"]))
        if r["large"]["tp"] + r["large"]["fp"] + r["large"]["fn"]:
            print(rate_line(f"  {name}", "large", r["large"]))


def run_fold(
    shipped: LoadedModel, frames: list[kit_ais.KitFrame], scenes: dict[str, kit_ais.KitScene], split: Split,
    out: Path, args: argparse.Namespace,
) -> dict[str, Any]:
    """Fine-tune on ``split.train`` and score fine-tuned and shipped models on val and test."""
    print(f"\nsplit (by recording; test recording {split.test_group}):")
    print(f"  train {len(split.train)}: {', '.join(split.train)}")
    print(f"  val   {len(split.val)}: {', '.join(split.val)} (same recording as training frames: a fit check)")
    print(f"  test  {len(split.test)}: {', '.join(split.test)}")
    cars = {k: sum(int((scenes[n].scene.vehicles['class'] == 'car').sum()) for n in v)
            for k, v in (("train", split.train), ("val", split.val), ("test", split.test))}
    print(f"  cars: {cars}")
    weights = out / FT_NAME / f"1.0.0-kit-{split.test_group}"
    length = (f"{args.finetune_iterations} iterations" if args.finetune_iterations
              else f"{args.finetune_minutes} min")
    print(f"\nfine-tuning {shipped.label} for {length} on the CPU (lr {args.lr}, seed {args.seed}) ...", flush=True)
    t0 = time.perf_counter()
    tuned, record = kit_ais.finetune(
        shipped, [scenes[n].scene for n in split.train], weights, minutes=args.finetune_minutes,
        iterations=args.finetune_iterations, lr=args.lr, seed=args.seed, progress=args.progress,
    )
    seconds = time.perf_counter() - t0
    print(f"  {record.iterations} iterations in {record.seconds:.0f} s (loss {record.loss_curve[0] if record.loss_curve else float('nan'):.3f}"
          f" -> {record.final_loss:.3f}); weights: {weights}")
    result = {
        "split": split.__dict__,
        "cars": cars,
        "finetune": {"minutes_budget": None if args.finetune_iterations else args.finetune_minutes,
                     "iterations_asked": args.finetune_iterations, "seconds": round(seconds, 1), "iterations": record.iterations,
                     "final_loss": record.final_loss, "loss_curve": record.loss_curve, "lr": args.lr, "seed": args.seed,
                     "weights": str(weights)},
        "shipped_test": score_frames(shipped, scenes, split.test, args.radius),
        "finetuned_test": score_frames(tuned, scenes, split.test, args.radius),
        "shipped_val": score_frames(shipped, scenes, split.val, args.radius),
        "finetuned_val": score_frames(tuned, scenes, split.val, args.radius),
    }
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="../shared/data or the KIT AIS folder itself")
    p.add_argument("--out", type=Path, default=None, help="where fine-tuned weights go (default: a new temp folder)")
    p.add_argument("--finetune-minutes", type=float, default=8.0, help="CPU wall-time budget per fine-tune; 0 skips run 2")
    p.add_argument("--finetune-iterations", type=int, default=None,
                   help="fine-tune for exactly this many steps instead of a time budget (reproducible on any machine)")
    p.add_argument("--json", type=Path, default=None, help="also write all numbers to this JSON file")
    p.add_argument("--test-scene", default=DEFAULT_TEST, help=f"test recording (id or prefix) [{DEFAULT_TEST}]")
    p.add_argument("--cross-validate", action="store_true", help="fine-tune once per recording, each as the test set")
    p.add_argument("--radius", type=float, default=kit_ais.RADIUS_M, help="match radius in metres [1.5]")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the fine-tune [1e-3]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--models-dir", type=Path, default=None, help="models folder (default: the repository's)")
    p.add_argument("--progress", action="store_true", help="show a progress bar while fine-tuning")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    models_dir = Path(args.models_dir or default_models_dir()).resolve()
    out = Path(args.out or tempfile.mkdtemp(prefix="kit-ais-out-")).resolve()
    if out == models_dir or models_dir in out.parents:
        raise SystemExit(f"--out {out} is inside {models_dir}: fine-tuned weights never go into models/")
    t_start = time.perf_counter()
    frames = kit_ais.load_frames(args.data)
    shipped = load_model(MODEL_NAME, None, models_dir)
    gsd = kit_ais.estimate_group_gsd(frames)

    print(f"KIT AIS Munich: {len(frames)} frames from {kit_ais.kit_folder(args.data)}")
    print("  images (c) 'KIT AIS Data Set', CC BY 3.0; labels jekhor/aerial-cars-dataset (no licence: evaluation only)")
    print(f"\nGSD from the median long side of axis-aligned car boxes (aspect >= {kit_ais.MIN_ASPECT}) vs a "
          f"{kit_ais.CAR_LENGTH_M} m car:")
    for g, e in gsd.items():
        print(f"  {g:<26} {e.gsd_m:.3f} m/px  ({e.cars} cars, median {e.median_length_px:.1f} px)")
    overall_gsd = kit_ais.estimate_gsd(frames)
    print(f"  {'all frames':<26} {overall_gsd.gsd_m:.3f} m/px  ({overall_gsd.cars} cars)")
    print(f"classes: {kit_ais.CLASS_MAP} (None = don't-care); NIR stand-in {kit_ais.NIR_FROM_RED} x red; "
          f"sRGB decoded, band means matched per frame to the card's {[round(m, 4) for m in shipped.mean[:3]]}; "
          f"resampled to {shipped.gsd_m} m; match radius {args.radius} m; score threshold "
          f"{shipped.postprocess.get('score_threshold')}")

    report: dict[str, Any] = {
        "data": str(kit_ais.kit_folder(args.data)),
        "attribution": "Images: KIT AIS Data Set (CC BY 3.0). Labels: jekhor/aerial-cars-dataset, no licence (evaluation only).",
        "gsd": {g: e.__dict__ for g, e in gsd.items()} | {"all": overall_gsd.__dict__},
        "gsd_per_frame": {f.name: kit_ais.estimate_gsd([f]).__dict__ for f in frames},
        "car_length_m": kit_ais.CAR_LENGTH_M,
        "class_map": kit_ais.CLASS_MAP,
        "nir": f"stand-in: {kit_ais.NIR_FROM_RED} x red reflectance (no NIR in the frames; the shipped model was trained with a real NIR)",
        "radiometry": "sRGB decoded to linear, each band of each frame scaled so its mean equals the model card's band mean",
        "radius_m": args.radius,
        "score_threshold": shipped.postprocess.get("score_threshold"),
        "dummy_crs": f"{kit_ais.DUMMY_CRS}, arbitrary origin {kit_ais.DUMMY_ORIGIN}, {kit_ais.MODEL_GSD_M} m pixels (not georeferenced)",
    }
    with tempfile.TemporaryDirectory(prefix="kit-ais-scenes-") as work:
        scenes = kit_ais.prepare_scenes(frames, Path(work), shipped.mean, gsd)
        counts = {n: {"car": int((s.scene.vehicles["class"] == "car").sum()),
                      "large": int((s.scene.vehicles["class"] == "large").sum()), "dont_care": len(s.ignore)}
                  for n, s in scenes.items()}
        report["label_counts"] = counts
        names = [f.name for f in frames]
        shipped_all = score_frames(shipped, scenes, names, args.radius)
        report["shipped_all"] = shipped_all
        print_per_frame("run 1: shipped model on every frame", shipped_all)

        folds = []
        if args.finetune_minutes > 0:
            groups = sorted({f.group for f in frames}) if args.cross_validate else [resolve_group(frames, args.test_scene)]
            for g in groups:
                folds.append(run_fold(shipped, frames, scenes, make_split(frames, g), out, args))
                print_per_frame(f"run 2: fine-tuned, test recording {g}", folds[-1]["finetuned_test"])
        report["folds"] = folds

    print(f"\nsummary (pooled over frames; matched within {args.radius} m, one-to-one, per class):")
    print(HEADER)
    print_run(f"shipped, all {len(frames)} frames", shipped_all)
    for fold in folds:
        g = fold["split"]["test_group"]
        print_run(f"shipped, test {g}", fold["shipped_test"])
        print_run(f"fine-tuned ({fold['finetune']['seconds'] / 60:.1f} min), test {g}", fold["finetuned_test"])
        print_run(f"shipped, val {'+'.join(fold['split']['val'])}", fold["shipped_val"], ("car",))
        print_run(f"fine-tuned, val {'+'.join(fold['split']['val'])}", fold["finetuned_val"], ("car",))
    if len(folds) > 1:
        pooled = {}
        for key in ("shipped_test", "finetuned_test"):
            total = {c: kit_ais.Rates() for c in kit_ais.RATE_KEYS}
            for fold in folds:
                for c in kit_ais.RATE_KEYS:
                    r = fold[key]["overall"][c]
                    total[c] = total[c].add(kit_ais.Rates(r["tp"], r["fp"], r["fn"]))
            pooled[key] = {"overall": {c: r.as_dict() for c, r in total.items()}}
            print_run(f"{key.replace('_', ', ')}, pooled over {len(folds)} folds", pooled[key])
        report["cross_validation"] = pooled
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(json_ready(report), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
