"""Training the building model (``building-unet``): extent, boundary, shadow and height.

Crops are sampled mostly around buildings (``object_share``), flipped/rotated
with their target rasters, shown as another sensor, season or sky would show
them (:class:`~baseline.train.augment.SensorAugment`: GSD 0.3-0.6 m,
panchromatic, leaf-off, shadow fill) and jittered photometrically. With ``sun_planes`` (off by
default: no gain measured) the sun's shadow vector goes in as two input planes
(:mod:`baseline.detect.sun_planes`), turned with each crop. Losses: BCE + soft
Dice on extent, BCE on the boundary band (up-weighted: it is thin and it is
what keeps touching buildings apart) and on the ground shadow, and smooth-L1
on roof height (on footprint pixels only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from baseline.detect.nets import BUILDING_CHANNELS, build_network
from baseline.detect.runtime import resolve_device
from baseline.detect.sun_planes import SUN_PLANES, sun_planes
from baseline.detect.weights import (
    DEFAULT_TILING,
    LoadedModel,
    load_model_dir,
    save_model,
    write_card,
)
from baseline.errors import InputFileError, ModelError
from baseline.train.augment import Dihedral, SensorAugment, photometric
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
from baseline.train.evaluation import evaluate_buildings_model
from baseline.train.loop import fit
from baseline.train.targets import BuildingTargets, building_targets
from baseline.train.tuning import central_crop, learned_height_offsets, tune_building_postprocess

log = logging.getLogger(__name__)


@dataclass
class BuildingTrainSettings:
    """Knobs of a building training run (all recorded in the card)."""

    epochs: int = 10
    iters_per_epoch: int = 100
    batch_size: int = 8
    crop_px: int = 192  # output pixels
    gsd_m: float = 0.3  # input GSD
    space_to_depth: int = 2  # input pixels per output pixel (output at 0.6 m)
    lr: float = 2e-3
    encoder: str = "tu-regnetx_002"
    decoder_channels: tuple[int, ...] = (64, 32, 32, 16, 16)
    object_share: float = 0.8
    boundary_weight: float = 3.0
    wall_weight: float = 4.0
    small_weight: float = 0.0  # extra extent-loss weight on small footprints and their ring (targets.SMALL_BUILDING_M2)
    height_weight: float = 2.0
    seed: int = 0
    max_minutes: float | None = None
    augment: str = "sensor"  # "basic": flips/rotations + photometric jitter; "sensor": also GSD, pan, season, sky
    sun_planes: bool = False  # the sun's shadow vector as two input planes (baseline.detect.sun_planes); no gain measured
    sun_dropout: float = 0.1  # share of crops shown with the sun unknown (zero planes)
    init_from: str | None = None  # a model folder whose weights, architecture and normalisation the fit starts from
    sample_workers: int = 0  # processes drawing crops (0: on the training process, reproducible; see train.loop)

    def sensor_augment(self) -> SensorAugment | None:
        """The sensor-spanning draws (GSD up to twice the model's), or None for basic augmentation."""
        if self.augment == "basic":
            return None
        if self.augment != "sensor":
            raise ValueError(f"augment must be 'basic' or 'sensor', not {self.augment!r}")
        return SensorAugment(gsd_m=self.gsd_m, max_gsd_m=2.0 * self.gsd_m)


class BuildingSampler:
    """Random augmented crops (normalised input, targets, masks) from rasterised scenes."""

    def __init__(self, scenes: list[BuildingTargets], settings: BuildingTrainSettings, mean, std) -> None:
        self.scenes = scenes
        self.s = settings
        self.mean = np.asarray(mean, np.float32)[:, None, None]
        self.std = np.asarray(std, np.float32)[:, None, None]
        areas = np.array([t.targets.shape[1] * t.targets.shape[2] for t in scenes], dtype=float)
        self.p_scene = areas / areas.sum()
        self.sensor = settings.sensor_augment()

    def _window(self, t: BuildingTargets, rng: np.random.Generator) -> tuple[int, int]:
        h, w = t.targets.shape[1:]
        c = self.s.crop_px
        if len(t.centres) and rng.random() < self.s.object_share:
            r, col = t.centres[rng.integers(len(t.centres))] + rng.uniform(-c / 2, c / 2, size=2)
            r0, c0 = int(r - c / 2), int(col - c / 2)
        else:
            r0, c0 = int(rng.integers(0, max(1, h - c + 1))), int(rng.integers(0, max(1, w - c + 1)))
        return int(np.clip(r0, 0, max(0, h - c))), int(np.clip(c0, 0, max(0, w - c)))

    def __call__(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        xs, ys, ms = [], [], []
        c = self.s.crop_px
        for _ in range(self.s.batch_size):
            t = self.scenes[rng.choice(len(self.scenes), p=self.p_scene)]
            r0, c0 = self._window(t, rng)
            f = t.output_stride
            image = t.image[:, r0 * f : (r0 + c) * f, c0 * f : (c0 + c) * f].astype(np.float32) * np.float32(1e-4)
            sl = (slice(None), slice(r0, r0 + c), slice(c0, c0 + c))
            target, mask = t.targets[sl].astype(np.float32), t.masks[sl]
            if target.shape[1] < c or target.shape[2] < c:  # scene smaller than a crop: pad
                pad = ((0, 0), (0, c - target.shape[1]), (0, c - target.shape[2]))
                target, mask = np.pad(target, pad), np.pad(mask, pad)
                image = np.pad(image, ((0, 0), (0, c * f - image.shape[1]), (0, c * f - image.shape[2])))
            d = Dihedral.random(rng)
            image, target, mask = d.raster(image), d.raster(target), d.raster(mask)
            if self.sensor is not None:
                shadow = target[2] * mask[1]
                image = self.sensor(image, rng, np.kron(shadow, np.ones((f, f), np.float32)) if f > 1 else shadow)
            image = photometric(image, rng)
            valid = np.kron(mask[0], np.ones((f, f), dtype=bool)) if f > 1 else mask[0]
            x = (image - self.mean) / self.std
            x[:, ~valid] = 0.0
            if self.s.sun_planes:
                known = rng.random() >= self.s.sun_dropout
                sun = d.vectors(t.sun_vector[None])[0] if known else np.zeros(2, np.float32)
                x = np.concatenate([x, sun_planes(sun, *x.shape[1:])])
            xs.append(x)
            ys.append(target)
            ms.append(mask)
        return (
            torch.from_numpy(np.stack(xs).astype(np.float32)),
            torch.from_numpy(np.stack(ys).astype(np.float32)),
            torch.from_numpy(np.stack(ms).astype(np.float32)),
        )


def building_loss(out: torch.Tensor, batch: tuple[torch.Tensor, ...], settings: BuildingTrainSettings) -> torch.Tensor:
    """Weighted sum of the extent, boundary, shadow and height losses."""
    y, m = batch
    seg_mask, shadow_mask, height_mask, wall, small = m[:, 0], m[:, 1], m[:, 2], m[:, 3], m[:, 4]

    def bce(i: int, mask: torch.Tensor, pos_weight: float = 1.0) -> torch.Tensor:
        w = mask * (1.0 + (pos_weight - 1.0) * y[:, i])
        if i == 0 and settings.small_weight:
            w = w * (1.0 + settings.small_weight * small)
        if i == 1:
            w = w * (1.0 + settings.wall_weight * wall)
        return (F.binary_cross_entropy_with_logits(out[:, i], y[:, i], reduction="none") * w).sum() / w.sum().clamp(min=1.0)

    p = torch.sigmoid(out[:, 0]) * seg_mask
    t = y[:, 0] * seg_mask
    dice = 1.0 - (2 * (p * t).sum() + 1.0) / (p.sum() + t.sum() + 1.0)
    loss = bce(0, seg_mask) + dice + settings.boundary_weight * bce(1, seg_mask, 2.0) + bce(2, shadow_mask, 1.5)
    h = F.smooth_l1_loss(out[:, 3], y[:, 3], reduction="none", beta=0.1)
    loss = loss + settings.height_weight * (h * height_mask).sum() / height_mask.sum().clamp(min=1.0)
    return loss


def _load(dirs: list[Path]) -> list[LabelledScene]:
    scenes = [load_labelled_scene(d) for d in dirs]
    for s in scenes:
        if s.buildings is None:
            raise InputFileError(s.path, "no building labels", hint="buildings.* or truth/buildings.parquet")
    return scenes


def train_buildings(
    data: list[Path],
    out: Path,
    *,
    val: list[Path] | None = None,
    settings: BuildingTrainSettings | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Train, save (weights, card, metrics) into ``out`` = models/<name>/<version>; return the card."""
    s = settings or BuildingTrainSettings()
    dev = resolve_device(device)
    start = _starting_model(s)
    train_scenes = _load(data)
    log.info("rasterising targets for %d scene(s) at %.2f m", len(train_scenes), s.gsd_m)
    targets = [building_targets(sc, s.gsd_m, s.space_to_depth) for sc in train_scenes]
    planes = list(SUN_PLANES) if s.sun_planes else []
    if start is not None:
        # the starting model's normalisation and architecture, or its weights would see other numbers
        mean, std = list(start.card["input"]["mean"]), list(start.card["input"]["std"])
        arch = start.card["architecture"]
        network = start.network.float()
    else:
        mean, std = band_stats([sc.image for sc in train_scenes], [sc.valid for sc in train_scenes], s.seed)
        mean, std = [m * 1e-4 for m in mean], [d * 1e-4 for d in std]
        arch = {"name": "building-unet", "config": {"encoder": s.encoder, "decoder_channels": list(s.decoder_channels),
                                                    "space_to_depth": s.space_to_depth,
                                                    "in_channels": len(BANDS) + len(planes)}}
        network = build_network(arch["name"], arch["config"])
    sampler = BuildingSampler(targets, s, mean, std)
    record = fit(
        network, sampler, lambda o, b: building_loss(o, b, s), iterations=s.epochs * s.iters_per_epoch,
        lr=s.lr, device=dev, seed=s.seed, max_seconds=None if s.max_minutes is None else 60.0 * s.max_minutes, desc="buildings", progress=progress,
        sample_workers=s.sample_workers,
    )
    name, version = name_version(out)
    card = base_card(
        name, version, "buildings",
        "Building footprints (instances split by a predicted boundary band) with heights from shadow "
        "length and the sun angles, or a learned roof-height head where no shadow can be measured. "
        f"Input at {s.gsd_m} m folded {s.space_to_depth}x{s.space_to_depth} into channels; maps at "
        f"{s.gsd_m * s.space_to_depth} m.",
    )
    card["limits"] = (
        "Trained on synthetic renders of one city only; expect lower accuracy on real imagery. Touching "
        "buildings are split only where the image shows a seam (a roof rim, a change of roof or height); "
        "heights assume flat ground, vertical walls and a nadir view. A building whose shadow falls on "
        "a lower neighbour's roof is measured from where that roof turns sunlit (once the neighbour's "
        "own height is known); one whose shadow only meets taller walls gets the learned height, "
        "clamped by the bounds its shadow gives, which is much less accurate. The shadow head was "
        "trained on renders with the sun at 30-60 degrees from the south-east to south-west (flips and "
        "quarter turns carry those to other azimuths); lower suns score lower. "
        + ("Sensor augmentation (coarser GSD up to twice the model's, panchromatic grey, leaf-off vegetation, "
           "shadow fill) widens what it has seen, not where it has been: every scene is still one rendered city. "
           if s.augment == "sensor" else "")
        + "Buildings larger than a tile's halo can be cut at tile edges."
    )
    card.update(
        architecture=arch,
        input={"bands": BANDS, "gsd_m": s.gsd_m, "mean": mean, "std": std, "scale": "reflectance 0..1",
               **({"sun_planes": planes} if planes else {})},
        outputs=list(BUILDING_CHANNELS),
        tiling=DEFAULT_TILING["buildings"] if start is None else dict(start.card.get("tiling", DEFAULT_TILING["buildings"])),
        postprocess=_starting_postprocess(start),
        training=training_block(record, train_scenes, _settings_dict(s), dev),
    )
    if start is not None:
        card["training"]["started_from"] = {"model": start.name, "version": start.version,
                                            "weights_sha256": start.card.get("weights_sha256")}
    save_model(network.cpu(), card, out)
    write_metrics(out, None, record)
    return finalise_buildings(out, train_scenes, val, device=str(dev))


def _starting_postprocess(start: LoadedModel | None) -> dict[str, Any]:
    """The post-processing a new card starts from, before :func:`finalise_buildings` tunes it.

    A fine-tune keeps its starting model's settings (shadow rules, roof tests,
    sigma floors that tuning does not derive); only what tuning derives is
    measured again. A model trained from scratch starts from plain defaults.
    """
    if start is not None:
        return dict(start.card.get("postprocess", {}))
    return {"extent_threshold": 0.5, "boundary_threshold": 0.5, "min_area_m2": 8.0, "shadow_threshold": 0.5,
            "min_shadow_rays": 3, "simplify_px": 0.75, "regularise_deg": 20.0, "learned_height_sigma_m": 1.5}


def _starting_model(s: BuildingTrainSettings) -> LoadedModel | None:
    """The model ``s.init_from`` names, with ``s`` made to match it (GSD, folding, encoder, sun planes).

    Fine-tuning keeps the starting model's architecture and input: settings
    that would change them are overridden, with a warning, not silently mixed.
    """
    if not s.init_from:
        return None
    start = load_model_dir(s.init_from)
    if start.task != "buildings":
        raise ModelError(f"{s.init_from}: a {start.task} model; --init-from needs a buildings model")
    config = start.card["architecture"]["config"]
    theirs = {
        "gsd_m": float(start.card["input"]["gsd_m"]),
        "space_to_depth": int(config.get("space_to_depth", 1)),
        "encoder": str(config["encoder"]),
        "decoder_channels": tuple(config["decoder_channels"]),
        "sun_planes": bool(start.card["input"].get("sun_planes")),
    }
    for key, value in theirs.items():
        if getattr(s, key) != value:
            log.warning("--init-from %s: %s is %s there; using it instead of %s", s.init_from, key, value, getattr(s, key))
            setattr(s, key, value)
    log.info("starting from %s %s (%s)", start.name, start.version, start.path)
    return start


def finalise_buildings(
    out: Path, train: list[LabelledScene] | list[Path], val: list[Path] | None, *, device: str = "auto",
    tune: bool = True,
) -> dict[str, Any]:
    """Tune post-processing on training crops, score the held-out scenes, rewrite card and metrics.

    The weights in ``out`` are not changed, so this can be rerun on a trained
    model (``baseline train buildings --rescore``), also on weights copied into
    a new version's folder: the card then takes that folder's version and
    names the one the weights came from (``weights_from``). With ``tune``
    False (``--keep-postprocess``) the card's post-processing is kept as it
    is (say, one setting changed by hand) and only the held-out scores are
    measured again; ``train`` is then not read.
    """
    train_scenes = [sc if isinstance(sc, LabelledScene) else load_labelled_scene(sc) for sc in train] if tune else []
    model = load_model_dir(out)
    card = dict(model.card)
    name, version = name_version(out)
    if card.get("version") != version:
        # weights copied into a new version's folder to be re-tuned: the card says whose they are
        card["weights_from"] = f"{card.get('name', name)} {card.get('version')}"
        card["name"], card["version"] = name, version
    if tune:
        tuned, scores = tune_building_postprocess(model, [central_crop(sc) for sc in train_scenes[:2]], device=device)
        offsets, record = learned_height_offsets(model, train_scenes, tuned, device=device)
        tuned["learned_height_offsets_by_area"] = offsets
        scores.update(record)
        card["postprocess"] = tuned
        card["postprocess_tuning"] = {
            "scores": scores,
            "on": [f"central 700 m of {sc.scene_id} (training)" for sc in train_scenes[:2]],
        }
        card.pop("postprocess_kept", None)
    else:
        card["postprocess_kept"] = True  # the card says its post-processing was not tuned by this rescore
    model.card = card
    evaluation = None
    if val:
        evaluation = evaluate_buildings_model(model, _load(val), device=device, batch_size=8)
        evaluation["note"] = (
            "Held-out renders (seeds and sun positions not used in training); matching IoU >= 0.5, one-to-one; "
            "post-processing tuned on training renders only."
        )
        card["evaluation"] = evaluation
    write_card(card, out)
    rewrite_evaluation(out, evaluation)
    return card


def _settings_dict(s: BuildingTrainSettings) -> dict[str, Any]:
    d = dict(s.__dict__)
    d["decoder_channels"] = list(s.decoder_channels)
    sensor = s.sensor_augment()
    if sensor is not None:
        d["sensor_augment"] = sensor.describe()
    return d
