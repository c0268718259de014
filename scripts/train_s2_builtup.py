"""Train the Sentinel-2 built-up network (``models/s2-builtup/1.0.0``) on the project's renders.

Usage::

    .venv/bin/python scripts/train_s2_builtup.py [--steps 5000] [--threads 1] [--out models/s2-builtup/1.0.0]

Training data: 36 Sentinel-2 renders of central Helsinki (``baseline.synth``,
seeds 1000-1035, a random sun each: elevation 25-65, azimuth 100-260 degrees)
and 36 renders of random block layouts on the same ground (seeds 4000-4035,
``random_layout`` in ``scripts/s2_builtup_data.py``: new geometry every time,
so the network must learn what buildings and shadows look like rather than
where the train region's buildings are), cached under ``.cache/s2-builtup``. Targets,
from each render's truth footprints (:func:`baseline.detect.s2_builtup.footprint_rasters`):
the built-up fraction of every 10 m pixel (footprints at 1 m, block-averaged)
and the footprint-area-weighted mean height of its buildings.

The split is spatial (every render draws the same OSM footprints; see
``scripts/s2_builtup_data.py``): the network is fitted on *train* pixels only,
and its inputs outside the train region are blanked (set to nodata) during
fitting, so it never sees a tune or test pixel; the *tune* band (the 300 m gap
between train and test) picks the checkpoint (every 250 steps, lowest tune
loss); the south-east *test* block and the Helsinki 3D renders are only ever
scored, by ``scripts/score_s2_builtup.py``.

Loss: binary cross-entropy plus twice the L1 error of the fraction, and the L1
error of the height (in units of 20 m) weighted by the true fraction, so each
pixel counts as much as the building area it holds (as in the cells' mean
height). Augmented with flips and quarter turns (the sun's shadow vector turns
with the image). Adam, cosine schedule, batch 12 crops of 40 px.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from s2_builtup_data import (  # noqa: E402
    GAP_M,
    SYNTH_SEEDS,
    TEST_SCENES,
    TEST_X_MIN,
    TEST_Y_MAX,
    TRAIN_SEEDS,
    city_sample,
    layout_sample,
    regions,
    training_suns,
)

from baseline.detect.s2_builtup import (  # noqa: E402
    HEIGHT_SCALE_M,
    MODEL_NAME,
    MODEL_VERSION,
    N_IMAGE,
    N_SUN,
    BuiltupNet,
    decode,
    input_features,
    sun_channels,
)

ROOT = Path(__file__).resolve().parents[1]
DILATIONS = (1, 2, 4, 8, 4, 1)
BATCH, CROP = 12, 40
MIN_HEIGHT_FRACTION = 0.02
"""Pixels with less built-up fraction than this carry no height loss (their height is undefined)."""


class Prepared:
    """One render as the training loop needs it: features, sun channels, targets and region masks."""

    def __init__(self, sample: dict[str, Any]) -> None:
        self.tag = sample["tag"]
        valid = sample["valid"]
        reg = regions(sample["x0"], sample["y0"], valid.shape, sample["gsd"])
        self.features = input_features(sample["reflectance"], valid)
        self.train_features = self.features.copy()
        self.train_features[:, ~reg["train"]] = 0.0   # the fit never sees a tune or test pixel
        self.tune_features = self.features.copy()
        self.tune_features[:, reg["test"]] = 0.0
        self.sun = sun_channels(*sample["sun"])
        self.target = np.stack([sample["fraction"], sample["height"] / HEIGHT_SCALE_M]).astype(np.float32)
        self.train_mask = reg["train"] & valid
        self.tune_mask = reg["tune"] & valid
        self.train_pixels = np.argwhere(self.train_mask)


def turn_sun(sun: np.ndarray, quarter_turns: int, flip: bool) -> np.ndarray:
    """The sun channels (rows, cols, length) after the image is turned counter-clockwise and flipped."""
    dr, dc, length = (float(v) for v in sun)
    for _ in range(quarter_turns % 4):  # one counter-clockwise turn takes (dr, dc) to (-dc, dr)
        dr, dc = -dc, dr
    if flip:
        dc = -dc
    return np.array([dr, dc, length], dtype=np.float32)


def batch(data: list[Prepared], rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """Random train-region crops (centred near a train pixel), flipped and turned."""
    xs, ss, ys, ms = [], [], [], []
    for _ in range(BATCH):
        p = data[int(rng.integers(len(data)))]
        h, w = p.train_mask.shape
        cy, cx = p.train_pixels[int(rng.integers(len(p.train_pixels)))]
        r = int(np.clip(cy - rng.integers(0, CROP), 0, h - CROP))
        c = int(np.clip(cx - rng.integers(0, CROP), 0, w - CROP))
        x = p.train_features[:, r : r + CROP, c : c + CROP]
        y = p.target[:, r : r + CROP, c : c + CROP]
        m = p.train_mask[r : r + CROP, c : c + CROP][None]
        k, flip = int(rng.integers(4)), bool(rng.random() < 0.5)
        x, y, m = (np.rot90(a, k, axes=(1, 2)) for a in (x, y, m))
        if flip:
            x, y, m = (a[:, :, ::-1] for a in (x, y, m))
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
        ms.append(np.ascontiguousarray(m))
        ss.append(turn_sun(p.sun, k, flip))
    return (torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ss)), torch.from_numpy(np.stack(ys)),
            torch.from_numpy(np.stack(ms)[:, 0].astype(np.float32)))


def loss_parts(raw: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fraction loss, height loss) over the ``mask`` pixels (see the module docstring)."""
    frac, height = decode(raw)
    true_f, true_h = target[:, 0], target[:, 1]
    n = mask.sum().clamp(min=1.0)
    f_loss = ((F.binary_cross_entropy_with_logits(raw[:, 0], true_f, reduction="none")
               + 2.0 * (frac - true_f).abs()) * mask).sum() / n
    wts = mask * true_f * (true_f >= MIN_HEIGHT_FRACTION).float()
    h_loss = (wts * (height / HEIGHT_SCALE_M - true_h).abs()).sum() / wts.sum().clamp(min=1e-3)
    return f_loss, h_loss


def tune_scores(net: BuiltupNet, data: list[Prepared]) -> dict[str, float]:
    """Per-pixel fraction MAE and fraction-weighted height MAE (m) over the tune band, and the loss."""
    errs_f, errs_h, wts, losses = [], [], [], []
    with torch.inference_mode():
        for p in data:
            raw = net(torch.from_numpy(p.tune_features)[None], torch.from_numpy(p.sun)[None])
            target = torch.from_numpy(p.target)[None]
            mask = torch.from_numpy(p.tune_mask.astype(np.float32))[None]
            f_loss, h_loss = loss_parts(raw, target, mask)
            losses.append(float(f_loss + h_loss))
            frac, height = (t[0].numpy() for t in decode(raw))
            m = p.tune_mask
            errs_f.append(np.abs(frac - p.target[0])[m])
            w = (p.target[0] * (p.target[0] >= MIN_HEIGHT_FRACTION))[m]
            errs_h.append(np.abs(height - p.target[1] * HEIGHT_SCALE_M)[m] * w)
            wts.append(w)
    return {"loss": float(np.mean(losses)), "pixel_fraction_mae": float(np.concatenate(errs_f).mean()),
            "pixel_height_mae_m": float(np.concatenate(errs_h).sum() / np.concatenate(wts).sum())}


def train(data: list[Prepared], tune: list[Prepared], steps: int, seed: int, width: int,
          lr: float = 3e-3) -> tuple[BuiltupNet, dict[str, Any]]:
    """Adam with a cosine schedule; the checkpoint with the lowest tune loss is returned."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = BuiltupNet(width, DILATIONS)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    record: dict[str, Any] = {"loss_every_100_steps": [], "tune": []}
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    running = 0.0
    started = time.perf_counter()
    for step in range(1, steps + 1):
        net.train()
        x, s, y, m = batch(data, rng)
        f_loss, h_loss = loss_parts(net(x, s), y, m)
        loss = f_loss + h_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running += float(loss.detach())
        if step % 100 == 0:
            record["loss_every_100_steps"].append(round(running / 100, 5))
            running = 0.0
        if step % 250 == 0 or step == steps:
            net.eval()
            scores = tune_scores(net, tune)
            record["tune"].append({"step": step, **{k: round(v, 5) for k, v in scores.items()}})
            print(f"step {step} ({time.perf_counter() - started:.0f} s): train loss "
                  f"{record['loss_every_100_steps'][-1] if record['loss_every_100_steps'] else float('nan'):.4f}, "
                  f"tune {scores}", flush=True)
            if best is None or scores["loss"] < best[0]:
                best = (scores["loss"], step, {k: v.detach().clone() for k, v in net.state_dict().items()})
    assert best is not None
    net.load_state_dict(best[2])
    record["best_step"] = best[1]
    return net.eval(), record


def write_model(net: BuiltupNet, out: Path, card: dict[str, Any]) -> None:
    """``model.safetensors`` (float32), ``card.json`` and ``MODEL_CARD.md``."""
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().float() for k, v in net.state_dict().items()}, str(out / "model.safetensors"),
              metadata={"name": MODEL_NAME, "version": MODEL_VERSION, "architecture": json.dumps(card["architecture"])})
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "MODEL_CARD.md").write_text(model_card_markdown(card))


def model_card_markdown(card: dict[str, Any], metrics: dict[str, Any] | None = None) -> str:
    """The card for people: what the network does, what it was trained on, how it is scored (and, given the
    ``metrics.json`` of ``scripts/score_s2_builtup.py``, what was measured)."""
    arch, tr = card["architecture"], card["training"]
    return f"""# {card["name"]} {card["version"]}

{card["task"]}.

- **Architecture**: `BuiltupNet` (baseline/detect/s2_builtup.py): {len(arch["dilations"])} 3x3 convolutions of width
  {arch["width"]} with dilations {arch["dilations"]} (receptive field {arch["receptive_field_px"]} pixels,
  {arch["receptive_field_px"] * 10} m), ReLU; the sun's {arch["sun_inputs"]} channels (shadow direction times length
  per metre of height, and that length) are concatenated to every layer's input; a 1x1 head gives the fraction's
  logit (sigmoid) and the height (softplus x {HEIGHT_SCALE_M:g} m). {arch["parameters"]} weights, float32 safetensors,
  built from scratch (no pretrained weights, no downloads).
- **Input**: Sentinel-2 L2A reflectance (0-1) at 10 m, bands blue, green, red, nir (B02, B03, B04, B08), and the
  valid mask, made into {arch["image_inputs"]} channels by `input_features`; the scene's sun elevation and azimuth.
- **Output**: per 10 m pixel, the share covered by building footprints (0-1) and the footprint-area-weighted
  mean height (m) of the buildings in it. `baseline.aggregate.builtup.builtup_cells` sums them per H3 cell
  (fraction = mean over valid pixels; height = fraction-weighted mean; volume = sum of fraction x area x height).
  Not single buildings: at 10 m there are none to see.
- **Training data**: {tr["scenes"]} renders of central Helsinki's OSM footprints (`baseline.synth`, seeds
  {tr["seeds"][0]}-{tr["seeds"][1]}; VHR gsd 1 m, sun elevation 25-65, azimuth 100-260 deg) and
  {len(tr["layout_seeds"])} renders of random block layouts (whole blocks, perimeter blocks, houses, slabs; one block
  in ten with a 40-120 m tower) drawn on the same ground (`random_layout` in `scripts/s2_builtup_data.py`; new
  geometry each, so the network learns what buildings and shadows look like, not where the train region's
  buildings are). **Spatial split** (every render draws the same OSM footprints, so a seed split alone would let
  the network memorise the city): fitted only on pixels of the train region ({tr["split"]["train"]}), with every
  input outside it blanked; checkpoint chosen on the tune band ({tr["split"]["tune"]}); scored on the test block
  ({tr["split"]["test"]}), at least {GAP_M:g} m from any train pixel, with renders of other seeds and suns
  ({tr["split"]["test_scenes"]}). {tr["steps"]} Adam steps (best tune checkpoint: step {tr["best_step"]}), batch
  {tr["batch"]} crops of {tr["crop_px"]} px, flips and quarter turns (script: `{tr["script"]}`, {tr["train_s"]:.0f} s
  on one CPU thread).
- **Second test**: the Helsinki 3D city model's real footprints and measured heights (Kalasatama, Viikki; 1.7-118 m),
  moved onto the extract as `scripts/score_helsinki3d.py` does and rendered; never trained on.
- **Evaluation**: `scripts/score_s2_builtup.py` (H3 res-9 cells wholly inside the held-out area, at least half
  valid; height only where the true built-up fraction is at least 0.05); figures in `metrics.json`.
{measured_markdown(metrics)}- **Limits**: trained on renders only, of one city's ground (475 OSM footprints of 3-70 m, most heights from a
  prior, not measured, and random layouts in which buildings over 60 m are rare), so real Sentinel-2 scenes and
  other building styles are untested, and tall buildings are underestimated (Kalasatama: a cell whose buildings
  average 34 m read as 20 m); heights are read from shadows, so it needs the sun's position and loses height where shadows fall on water,
  other roofs or out of the image; the held-out central-Helsinki block holds only three whole res-9 cells, the
  Helsinki 3D areas four (Viikki's render holds none whole), so the cell figures rest on few cells.
- **Licence**: {card["licence"]}.
"""


def measured_markdown(metrics: dict[str, Any] | None) -> str:
    """The card's "Measured" lines from ``metrics.json`` (nothing when there is none)."""
    if not metrics:
        return ""
    lines = ["- **Measured** (H3 res-9 cells; MAE, bias; renders x cells, distinct cells in brackets):"]
    names = {"helsinki_test": "central Helsinki, held-out south-east block",
             "helsinki3d": "Helsinki 3D city model (Kalasatama; Viikki has no whole cell)",
             "helsinki_train_region": "central Helsinki train region, new seeds/suns (reference: NOT held out)"}
    for key, label in names.items():
        m = metrics.get(key)
        if not m or not m.get("cells"):
            continue
        height = ("-" if m.get("height_mae_m") is None else
                  f"{m['height_mae_m']:.2f} m (bias {m['height_bias_m']:+.2f} m, {m['height_cells']} cells)")
        lines.append(f"  - {label}: fraction {m['fraction_mae']:.3f} (bias {m['fraction_bias']:+.3f}, {m['cells']} "
                     f"({m['distinct_cells']}) cells); height {height}; per pixel: fraction "
                     f"{m.get('pixel_fraction_mae', float('nan')):.3f}, height {m.get('pixel_height_mae_m', float('nan')):.2f} m")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--width", type=int, default=24)
    ap.add_argument("--no-layouts", dest="layouts", action="store_false",
                    help="train on the OSM footprints only (no random-layout renders)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 while another job shares the CPU)")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / MODEL_NAME / MODEL_VERSION)
    ap.add_argument("--card-only", action="store_true",
                    help="rewrite MODEL_CARD.md from the folder's card.json and metrics.json, and stop")
    args = ap.parse_args()
    if args.card_only:
        card = json.loads((args.out / "card.json").read_text())
        metrics_path = args.out / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
        (args.out / "MODEL_CARD.md").write_text(model_card_markdown(card, metrics))
        return
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    suns = training_suns()
    layout_suns = training_suns(SYNTH_SEEDS, rng_seed=20252) if args.layouts else []
    city = [Prepared(city_sample(seed, e, a)) for seed, e, a in suns]
    layouts = [Prepared(layout_sample(seed, e, a)) for seed, e, a in layout_suns]
    render_s = time.perf_counter() - started
    print(f"{len(city)} city and {len(layouts)} random-layout renders ready ({render_s:.0f} s); "
          f"{sum(int(p.train_mask.sum()) for p in city + layouts)} train and "
          f"{sum(int(p.tune_mask.sum()) for p in city)} tune pixels", flush=True)
    net, record = train(city + layouts, city, args.steps, 0, args.width)
    data = city + layouts
    train_s = time.perf_counter() - started - render_s
    card = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "task": "Sentinel-2 L2A (10 m) built-up fraction and mean building height per pixel",
        "architecture": {"kind": "BuiltupNet", "width": args.width, "dilations": list(DILATIONS),
                         "receptive_field_px": 1 + 2 * sum(DILATIONS), "image_inputs": N_IMAGE, "sun_inputs": N_SUN,
                         "outputs": ["builtup_fraction_logit", "height (softplus, x20 m)"],
                         "parameters": int(sum(p.numel() for p in net.parameters()))},
        "input": {"bands": ["blue", "green", "red", "nir"], "gsd_m": 10.0, "reflectance": "0 to 1",
                  "features": "baseline.detect.s2_builtup.input_features",
                  "sun": "baseline.detect.s2_builtup.sun_channels(elevation, azimuth)"},
        "training": {
            "script": "scripts/train_s2_builtup.py", "seeds": [TRAIN_SEEDS[0], TRAIN_SEEDS[-1]], "scenes": len(city),
            "suns": [[s, e, a] for s, e, a in suns],
            "layout_seeds": [[s, e, a] for s, e, a in layout_suns],
            "render": "central Helsinki (OSM footprints), VHR gsd 1 m, sun elevation 25-65, azimuth 100-260 deg",
            "split": {
                "crs": "EPSG:32635",
                "train": f"pixel centres with x < {TEST_X_MIN - GAP_M:.0f} or y >= {TEST_Y_MAX + GAP_M:.0f}",
                "tune": "the band between train and test",
                "test": f"pixel centres with x >= {TEST_X_MIN:.0f} and y < {TEST_Y_MAX:.0f}",
                "gap_m": GAP_M,
                "test_scenes": ", ".join(f"seed {s} sun {e:g}/{a:g}" for s, e, a in TEST_SCENES),
            },
            "train_pixels_per_render": int(np.mean([p.train_mask.sum() for p in data])),
            "tune_on": "the tune band of the central-Helsinki (OSM) renders",
            "steps": args.steps, "best_step": record["best_step"], "batch": BATCH, "crop_px": CROP, "lr": 3e-3,
            "threads": args.threads, "loss_every_100_steps": record["loss_every_100_steps"], "tune": record["tune"],
            "render_s": round(render_s, 1),
            "render_note": "render_s is the time to render or load the samples in this run; they are cached in "
                           ".cache/s2-builtup by scripts/s2_builtup_data.py (rendering all 72 training renders "
                           "takes about 2-3 s per OSM render and 5-9 s per random layout on one CPU thread)",
            "train_s": round(train_s, 1),
        },
        "licence": "Apache-2.0; training scenes rendered from OpenStreetMap data (c) OpenStreetMap contributors, ODbL 1.0",
    }
    write_model(net, args.out, card)
    print(f"wrote {args.out} (best step {record['best_step']}) in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
