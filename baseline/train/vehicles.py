"""Training the vehicle model (``vehicle-centernet``): heatmaps, boxes, axis and motion.

Crops are sampled mostly around vehicles, the vehicles are moved into crop
pixels, flipped/rotated together with the image (positions, axis and
displacement vectors all transform), and CenterNet targets are drawn per crop.
Losses: the CenterNet focal loss on the heatmaps and weighted L1 on the
regressions (offset, log size, doubled angle, blue->nir displacement).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from baseline.detect.nets import VEHICLE_CHANNELS, build_network
from baseline.detect.runtime import resolve_device
from baseline.detect.weights import DEFAULT_TILING, load_model_dir, save_model, write_card
from baseline.errors import InputFileError
from baseline.train.augment import Dihedral, photometric
from baseline.train.common import (
    BANDS,
    band_stats,
    base_card,
    name_version,
    rewrite_evaluation,
    training_block,
    write_metrics,
)
from baseline.train.data import LabelledScene, load_labelled_scene
from baseline.train.evaluation import evaluate_vehicles_model
from baseline.train.loop import fit
from baseline.train.targets import VehicleObjects, vehicle_maps, vehicle_objects

log = logging.getLogger(__name__)

EVALUATION_NOTE = (
    "Held-out renders (seeds and sun positions not used in training); centres within 1.5 m, one-to-one; "
    "on-road, kerb and car-park places decided as a run decides them, over the scene's map."
)


@dataclass
class VehicleTrainSettings:
    """Knobs of a vehicle training run (all recorded in the card)."""

    epochs: int = 10
    iters_per_epoch: int = 100
    batch_size: int = 16
    crop_px: int = 128
    lr: float = 3e-3
    widths: tuple[int, ...] = (16, 32, 64, 96)
    object_share: float = 0.8
    score_threshold: float = 0.3
    seed: int = 0
    max_minutes: float | None = None
    sample_workers: int = 0  # processes drawing crops (0: on the training process, reproducible; see train.loop)


@dataclass
class _Scene:
    image: np.ndarray  # uint16 (4, H, W)
    valid: np.ndarray
    objects: VehicleObjects
    gsd_m: float


class VehicleSampler:
    """Random augmented crops with CenterNet targets."""

    def __init__(self, scenes: list[LabelledScene], settings: VehicleTrainSettings, mean, std) -> None:
        self.scenes = [_Scene(s.image, s.valid, vehicle_objects(s), s.gsd_m) for s in scenes]
        self.s = settings
        self.mean = np.asarray(mean, np.float32)[:, None, None]
        self.std = np.asarray(std, np.float32)[:, None, None]
        areas = np.array([sc.valid.size for sc in self.scenes], dtype=float)
        self.p_scene = areas / areas.sum()
        # rare kinds are centred on more often: large vehicles and moving ones
        self.p_object = []
        for src in scenes:
            v = src.vehicles
            w = 1.0 + 5.0 * (v["class"].to_numpy() == "large") + 1.0 * v["moving"].to_numpy(bool)
            self.p_object.append(w / w.sum() if len(w) else w)

    def _crop(self, k: int, rng: np.random.Generator) -> tuple[int, int]:
        sc = self.scenes[k]
        h, w = sc.valid.shape
        c = self.s.crop_px
        n = len(sc.objects.centre)
        if n and rng.random() < self.s.object_share:
            pick = rng.choice(n, p=self.p_object[k])
            r, col = sc.objects.centre[pick] + rng.uniform(-c / 2 + 8, c / 2 - 8, size=2)
            r0, c0 = int(r - c / 2), int(col - c / 2)
        else:
            r0, c0 = int(rng.integers(0, max(1, h - c + 1))), int(rng.integers(0, max(1, w - c + 1)))
        return int(np.clip(r0, 0, max(0, h - c))), int(np.clip(c0, 0, max(0, w - c)))

    def __call__(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        xs, ys, ws = [], [], []
        c = self.s.crop_px
        for _ in range(self.s.batch_size):
            k = int(rng.choice(len(self.scenes), p=self.p_scene))
            sc = self.scenes[k]
            r0, c0 = self._crop(k, rng)
            image = sc.image[:, r0 : r0 + c, c0 : c0 + c].astype(np.float32) * np.float32(1e-4)
            valid = sc.valid[r0 : r0 + c, c0 : c0 + c]
            if image.shape[1] < c or image.shape[2] < c:
                pad = ((0, 0), (0, c - image.shape[1]), (0, c - image.shape[2]))
                image, valid = np.pad(image, pad), np.pad(valid, pad[1:])
            o = sc.objects
            centre = o.centre - np.array([r0, c0])
            near = np.all((centre > -16) & (centre < c + 16), axis=1)
            d = Dihedral.random(rng)
            objects = VehicleObjects(
                d.points(centre[near], c), d.vectors(o.axis[near]), o.length_m[near], o.width_m[near],
                o.cls[near], d.vectors(o.disp[near]), o.has_motion,
            )
            image = photometric(d.raster(image), rng)
            valid = d.raster(valid[None])[0]
            target, weight = vehicle_maps(objects, c, sc.gsd_m)
            x = (image - self.mean) / self.std
            x[:, ~valid] = 0.0
            xs.append(x)
            ys.append(target)
            ws.append(weight)
        return (
            torch.from_numpy(np.stack(xs).astype(np.float32)),
            torch.from_numpy(np.stack(ys)),
            torch.from_numpy(np.stack(ws)),
        )


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1.0).float()
    neg_w = (1.0 - target).pow(4)
    pos_loss = (torch.log(p) * (1 - p).pow(2) * pos).sum()
    neg_loss = (torch.log(1 - p) * p.pow(2) * neg_w * (1 - pos)).sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def vehicle_loss(out: torch.Tensor, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Focal loss on heatmaps plus weighted L1 on every regression channel group."""
    y, w = batch
    loss = focal_loss(out[:, :2], y[:, :2])
    groups = {"offset": (2, 4, 1.0), "size": (4, 6, 1.0), "angle": (6, 8, 1.0), "disp": (8, 10, 2.0)}
    for name, (lo, hi, k) in groups.items():
        wg = w[:, lo:hi]
        if name == "disp":  # quadratic near zero: L1 would pull the rare moving vehicles to the median, 0
            err = F.smooth_l1_loss(out[:, lo:hi], y[:, lo:hi], reduction="none", beta=0.5)
        else:
            err = (out[:, lo:hi] - y[:, lo:hi]).abs()
        loss = loss + k * (err * wg).sum() / wg.sum().clamp(min=1.0)
    return loss


def _load(dirs: list[Path]) -> list[LabelledScene]:
    scenes = [load_labelled_scene(d) for d in dirs]
    for s in scenes:
        if s.vehicles is None:
            raise InputFileError(s.path, "no vehicle labels", hint="vehicles.* or truth/vehicles.parquet")
    for s in scenes[1:]:
        # the network learns sizes and displacements in pixels: one pixel size per model
        if abs(s.gsd_m - scenes[0].gsd_m) > 0.01 * scenes[0].gsd_m:
            raise InputFileError(
                s.path, f"pixel size {s.gsd_m:g} m, but {scenes[0].path} has {scenes[0].gsd_m:g} m",
                hint="a vehicle model is trained at one GSD: resample the images to one pixel size "
                     "(e.g. gdalwarp -tr) or train one model per GSD",
            )
    return scenes


def train_vehicles(
    data: list[Path],
    out: Path,
    *,
    val: list[Path] | None = None,
    settings: VehicleTrainSettings | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Train, save (weights, card, metrics) into ``out`` = models/<name>/<version>; return the card."""
    s = settings or VehicleTrainSettings()
    dev = resolve_device(device)
    scenes = _load(data)
    gsd = scenes[0].gsd_m
    mean, std = band_stats([sc.image for sc in scenes], [sc.valid for sc in scenes], s.seed)
    mean, std = [m * 1e-4 for m in mean], [d * 1e-4 for d in std]
    arch = {"name": "vehicle-centernet", "config": {"widths": list(s.widths)}}
    network = build_network(arch["name"], arch["config"])
    sampler = VehicleSampler(scenes, s, mean, std)
    record = fit(
        network, sampler, vehicle_loss, iterations=s.epochs * s.iters_per_epoch, lr=s.lr, device=dev,
        seed=s.seed, max_seconds=None if s.max_minutes is None else 60.0 * s.max_minutes, desc="vehicles", progress=progress,
        sample_workers=s.sample_workers,
    )
    name, version = name_version(out)
    offsets = scenes[0].band_time_offsets_s
    card = base_card(
        name, version, "vehicles",
        "Cars and large vehicles as oriented boxes (CenterNet-style, stride 2), with the long axis, and "
        "speed and direction of travel from the displacement between the blue and nir bands.",
    )
    card["limits"] = (
        "Trained on synthetic renders of one city only; expect lower accuracy on real imagery. Large "
        "vehicles are rare in the training data, so their rates are less certain. Speed is measured from "
        "the shift between bands along the vehicle's axis and needs the scene's band time offsets; a "
        "parked vehicle's heading has a 180-degree ambiguity."
    )
    card.update(
        architecture=arch,
        input={"bands": BANDS, "gsd_m": gsd, "mean": mean, "std": std, "scale": "reflectance 0..1",
               "band_time_offsets_s_trained": offsets},
        outputs=list(VEHICLE_CHANNELS),
        tiling=DEFAULT_TILING["vehicles"],
        postprocess={"score_threshold": s.score_threshold, "moving_kmh": 5.0},
        training=training_block(record, scenes, {**s.__dict__, "widths": list(s.widths)}, dev),
    )
    save_model(network.cpu(), card, out)
    evaluation = None
    if val:
        model = load_model_dir(out)
        evaluation = evaluate_vehicles_model(model, _load(val), device=str(dev), batch_size=8)
        evaluation["note"] = EVALUATION_NOTE
        card["evaluation"] = evaluation
        save_model(network.cpu(), card, out)
    write_metrics(out, evaluation, record)
    return card


def rescore_vehicles(out: Path, val: list[Path], *, device: str = "auto") -> dict[str, Any]:
    """Score the model in ``out`` on ``val`` and rewrite its card and metrics; the weights are not changed.

    ``baseline train vehicles --rescore``: refreshes the card's rates (the ones
    every interval rests on) after the scoring itself changes, without training again.
    """
    if not val:
        raise InputFileError(out, "--rescore needs --val folders to score on")
    model = load_model_dir(out)
    card = dict(model.card)
    evaluation = evaluate_vehicles_model(model, _load(val), device=str(resolve_device(device)), batch_size=8)
    evaluation["note"] = EVALUATION_NOTE
    card["evaluation"] = evaluation
    write_card(card, out)
    rewrite_evaluation(out, evaluation)
    return card
