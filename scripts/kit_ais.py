"""Real KIT AIS Munich frames as labelled scenes for the vehicle model (used by ``score_kit_ais.py``).

The frames (``../shared/data/kit_ais_munich_vehicles``, images CC BY 3.0 "KIT AIS
Data Set") are 8-bit RGB PNGs of Munich streets with YOLO boxes (labels from
jekhor/aerial-cars-dataset, no licence stated: evaluation only, read from the
shared folder at run time and never copied into the repository). They have no
georeference, no NIR band and no radiometric calibration, so this module makes
every such choice explicitly and in one place:

- **GSD**: estimated per recording (frames of one sequence share a size and a
  name prefix) from the median long side, in pixels, of the car boxes that are
  clearly axis-aligned (long/short side >= :data:`MIN_ASPECT`), against a typical
  car length of :data:`CAR_LENGTH_M`. Label boxes are hand-drawn and a little
  loose, so this slightly underestimates the GSD (by a few per cent).
- **Resampling**: area averaging (the project's :func:`baseline.detect.runtime.resample`)
  to the model's 0.3 m; label boxes are scaled with the image.
- **Radiometry**: the PNG values are sRGB-encoded; they are decoded to linear
  intensity (the sRGB transfer curve) and each band of each frame is scaled so
  that its mean equals the model card's mean for that band. Linear DN/255 has a
  third of the card's contrast (coefficient of variation 0.2-0.4 against 0.7-0.8);
  decoded sRGB has 0.45-0.8. The rule uses only the frame's own pixels (no labels,
  no other frame), so it is what a deployment on uncalibrated imagery could do.
- **NIR**: there is none; the stand-in is :data:`NIR_FROM_RED` x red reflectance
  (the asphalt NIR/red ratio of :mod:`baseline.synth.materials`, so roads and
  cars look roughly as in training; vegetation is wrong: dark instead of
  bright). The shipped model was trained with a real NIR; fine-tuning can learn
  the stand-in. With no band timing, motion is not measured or scored.
- **Classes**: car -> car; truck, bus, minibus -> large; cyclist -> ignored
  (don't-care: not truth, and a prediction on one is dropped before scoring).
- **Geometry**: each resampled frame is written as a GeoTIFF in an *arbitrary*
  local metric frame (EPSG:32632 with a made-up origin, 0.3 m pixels; the
  coordinates mean nothing on the ground) with its boxes as axis-aligned polygons
  (``vehicles.parquet``, column ``class``), the "labelled raster" layout that
  :func:`baseline.train.data.load_labelled_scene` reads. YOLO boxes are
  axis-aligned, so an oblique car's box is too big and its axis wrong; matching
  uses centres only (within 1.5 m, as ``baseline evaluate`` does).
"""

from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
import torch
from affine import Affine
from PIL import Image

from baseline.core.chips import REFLECTANCE_MAX
from baseline.detect.runtime import resample
from baseline.detect.weights import LoadedModel, load_model_dir, save_model
from baseline.evaluate import match_vehicles, vehicle_metrics
from baseline.evaluate.metrics import precision_recall_f1
from baseline.train.common import training_block
from baseline.train.data import LabelledScene, load_labelled_scene
from baseline.train.evaluation import predict_vehicles
from baseline.train.loop import FitRecord, fit
from baseline.train.vehicles import VehicleSampler, VehicleTrainSettings, vehicle_loss

KIT_FOLDER = "kit_ais_munich_vehicles"
YOLO_CLASSES = ("car", "truck", "bus", "minibus", "cyclist")
CLASS_MAP: dict[str, str | None] = {"car": "car", "truck": "large", "bus": "large", "minibus": "large", "cyclist": None}
"""YOLO class -> model class; None is don't-care (left out of truth, predictions on it dropped)."""
CAR_LENGTH_M = 4.5
MIN_ASPECT = 1.6
NIR_FROM_RED = 1.2
MODEL_GSD_M = 0.3
RADIUS_M = 1.5
DUMMY_CRS = "EPSG:32632"
DUMMY_ORIGIN = (500000.0, 5000000.0)
"""Arbitrary top-left corner (x, y) of every written frame: the frames are not georeferenced."""
IMAGE_FILE = "image.tif"
LABEL_FILE = "vehicles.parquet"
RATE_KEYS = ("all", "car", "large")


@dataclass
class KitFrame:
    """One PNG frame with its YOLO labels as read.

    ``rgb`` is (H, W, 3) uint8; ``labels`` (n, 5) float: YOLO class id, then
    centre x, centre y, width, height, normalised to the frame (0..1).
    """

    name: str
    rgb: np.ndarray
    labels: np.ndarray

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def group(self) -> str:
        """The recording this frame belongs to: name prefix before ``MOS`` plus frame size.

        Frames of one recording overlap (the parked cars repeat), so splits are
        made by group, never by frame.
        """
        prefix = self.name.rsplit("MOS", 1)[0].rstrip("-_") or "MOS"
        return f"{prefix}-{self.width}x{self.height}"

    @property
    def yolo_names(self) -> np.ndarray:
        return np.asarray([YOLO_CLASSES[int(c)] for c in self.labels[:, 0]], dtype=object)

    @property
    def classes(self) -> np.ndarray:
        """The model class of each label (``car``/``large``), None where it is don't-care."""
        return np.asarray([CLASS_MAP[n] for n in self.yolo_names], dtype=object)


def kit_folder(data: Path) -> Path:
    """The KIT AIS folder: ``data`` itself or ``data/kit_ais_munich_vehicles``."""
    data = Path(data)
    return data / KIT_FOLDER if (data / KIT_FOLDER).is_dir() else data


def read_yolo_labels(path: Path) -> np.ndarray:
    """(n, 5) array of ``class cx cy w h`` from a YOLO text file (empty file: no rows)."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 5:
            raise ValueError(f"{path}:{lineno}: expected 'class cx cy w h', got {line!r}")
        values = [float(p) for p in parts]
        if values[0] != int(values[0]) or not 0 <= values[0] < len(YOLO_CLASSES):
            raise ValueError(f"{path}:{lineno}: class {parts[0]} is not one of 0..{len(YOLO_CLASSES) - 1}")
        rows.append(values)
    return np.asarray(rows, dtype=float).reshape(-1, 5)


def load_frame(png: Path) -> KitFrame:
    """A PNG and the YOLO ``.txt`` beside it."""
    png = Path(png)
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"))
    return KitFrame(png.stem, rgb, read_yolo_labels(png.with_suffix(".txt")))


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def load_frames(data: Path) -> list[KitFrame]:
    """Every labelled PNG frame under ``data`` (see :func:`kit_folder`), in natural name order."""
    folder = kit_folder(data)
    pngs = sorted((p for p in folder.glob("*.png") if p.with_suffix(".txt").exists()), key=lambda p: _natural(p.stem))
    if not pngs:
        raise FileNotFoundError(f"no labelled PNG frames (NAME.png + NAME.txt) under {folder}")
    return [load_frame(p) for p in pngs]


def car_lengths_px(frame: KitFrame) -> np.ndarray:
    """Long side in pixels of each car box that is clearly axis-aligned (aspect >= :data:`MIN_ASPECT`)."""
    car = frame.labels[frame.yolo_names == "car"]
    w, h = car[:, 3] * frame.width, car[:, 4] * frame.height
    long, short = np.maximum(w, h), np.minimum(w, h)
    return long[long >= MIN_ASPECT * np.maximum(short, 1e-9)]


@dataclass(frozen=True)
class GsdEstimate:
    """A GSD estimate from car boxes: metres per pixel, the cars used and their median length."""

    gsd_m: float
    cars: int
    median_length_px: float


def estimate_gsd(frames: list[KitFrame], car_length_m: float = CAR_LENGTH_M) -> GsdEstimate:
    """``car_length_m`` / median long side of the axis-aligned car boxes pooled over ``frames``."""
    lengths = np.concatenate([car_lengths_px(f) for f in frames]) if frames else np.zeros(0)
    if lengths.size == 0:
        raise ValueError("no axis-aligned car boxes to estimate the GSD from")
    median = float(np.median(lengths))
    return GsdEstimate(car_length_m / median, int(lengths.size), median)


def estimate_group_gsd(frames: list[KitFrame]) -> dict[str, GsdEstimate]:
    """One GSD estimate per recording (frames of one group pooled)."""
    groups: dict[str, list[KitFrame]] = {}
    for f in frames:
        groups.setdefault(f.group, []).append(f)
    return {g: estimate_gsd(fs) for g, fs in groups.items()}


def srgb_to_linear(dn: np.ndarray) -> np.ndarray:
    """8-bit sRGB values to linear intensity 0..1 (the standard sRGB transfer curve)."""
    v = dn.astype(np.float32) / np.float32(255.0)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def frame_reflectance(rgb: np.ndarray, band_means: list[float] | np.ndarray) -> np.ndarray:
    """(4, H, W) float32 reflectance-like bands blue, green, red, nir from (H, W, 3) sRGB.

    Decoded to linear intensity, each visible band scaled so that its mean over
    the frame equals ``band_means`` (the model card's blue, green, red means);
    nir is the stand-in :data:`NIR_FROM_RED` x red. Clipped at the project's
    reflectance ceiling.
    """
    lin = srgb_to_linear(rgb)
    bgr = np.moveaxis(lin[..., ::-1], -1, 0)  # blue, green, red
    mean = bgr.reshape(3, -1).mean(axis=1)
    gain = np.asarray(band_means[:3], dtype=np.float32) / np.maximum(mean, 1e-6)
    vis = bgr * gain[:, None, None].astype(np.float32)
    out = np.concatenate([vis, NIR_FROM_RED * vis[2:3]], axis=0)
    return np.minimum(out, np.float32(REFLECTANCE_MAX)).astype(np.float32)


@dataclass
class ResampledFrame:
    """A frame at the model's GSD: reflectance (4, h, w) and boxes in its pixel grid.

    ``boxes`` (n, 4) are centre column, centre row, width, height in resampled
    pixels; ``classes`` the model class of each (None: don't-care).
    """

    name: str
    group: str
    source_gsd_m: float
    gsd_m: float
    image: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray

    @property
    def counts(self) -> dict[str, int]:
        """Boxes per model class (``ignore`` for don't-care)."""
        names = ["ignore" if c is None else str(c) for c in self.classes]
        return {k: names.count(k) for k in ("car", "large", "ignore")}


def resample_frame(
    frame: KitFrame, source_gsd_m: float, band_means: list[float], gsd_m: float = MODEL_GSD_M
) -> ResampledFrame:
    """``frame`` as reflectance at ``gsd_m`` (area average) with its boxes in the new grid.

    The new size is the frame's ground extent divided by ``gsd_m``, rounded; boxes
    are normalised, so they scale by that size exactly.
    """
    h = max(1, round(frame.height * source_gsd_m / gsd_m))
    w = max(1, round(frame.width * source_gsd_m / gsd_m))
    image = resample(frame_reflectance(frame.rgb, band_means), (h, w))
    lab = frame.labels
    boxes = np.stack([lab[:, 1] * w, lab[:, 2] * h, lab[:, 3] * w, lab[:, 4] * h], axis=1)
    return ResampledFrame(frame.name, frame.group, source_gsd_m, gsd_m, image.astype(np.float32), boxes, frame.classes)


def frame_transform(gsd_m: float = MODEL_GSD_M, origin: tuple[float, float] = DUMMY_ORIGIN) -> Affine:
    """North-up transform of a written frame in the arbitrary local frame (see :data:`DUMMY_ORIGIN`)."""
    return Affine(gsd_m, 0.0, origin[0], 0.0, -gsd_m, origin[1])


def box_table(boxes: np.ndarray, classes: np.ndarray, transform: Affine, crs: str = DUMMY_CRS) -> gpd.GeoDataFrame:
    """Axis-aligned box polygons (scene CRS) with ``class``, from pixel boxes (cx, cy, w, h)."""
    cx, cy, w, h = (boxes[:, i] if len(boxes) else np.zeros(0) for i in range(4))
    x0, y0 = transform @ (cx - w / 2, cy - h / 2)
    x1, y1 = transform @ (cx + w / 2, cy + h / 2)
    geoms = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
    return gpd.GeoDataFrame({"class": pd.Series(list(classes), dtype=object)}, geometry=list(geoms), crs=crs)


def write_scene_folder(rf: ResampledFrame, folder: Path, crs: str = DUMMY_CRS) -> Path:
    """Write ``rf`` as a labelled-raster folder the project's trainer reads; return ``folder``.

    ``image.tif``: 4 bands (blue, green, red, nir), uint16 reflectance x 10000,
    floored at 1 so that no pixel reads as nodata; ``vehicles.parquet``: the
    car/large boxes (don't-care ones left out) with ``class``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    transform = frame_transform(rf.gsd_m)
    counts = np.clip(np.round(rf.image * 10000.0), 1, 65535).astype(np.uint16)
    profile = {"driver": "GTiff", "height": counts.shape[1], "width": counts.shape[2], "count": 4,
               "dtype": "uint16", "crs": crs, "transform": transform}
    with rasterio.open(folder / IMAGE_FILE, "w", **profile) as dst:
        dst.write(counts)
        dst.descriptions = ("blue", "green", "red", "nir (stand-in: 1.2 x red)")
    keep = np.asarray([c is not None for c in rf.classes], dtype=bool)
    box_table(rf.boxes[keep], rf.classes[keep], transform, crs).to_parquet(folder / LABEL_FILE)
    (folder / "meta.json").write_text(json.dumps({"band_time_offsets_s": {}, "source": f"KIT AIS frame {rf.name}"}) + "\n")
    return folder


@dataclass
class KitScene:
    """A frame loaded back through :func:`load_labelled_scene`, with its don't-care boxes."""

    name: str
    group: str
    scene: LabelledScene
    ignore: gpd.GeoDataFrame


def prepare_scenes(
    frames: list[KitFrame], workdir: Path, band_means: list[float], gsd: dict[str, GsdEstimate]
) -> dict[str, KitScene]:
    """Resample, write and read back every frame (``workdir/<name>``), keyed by frame name."""
    out = {}
    for frame in frames:
        rf = resample_frame(frame, gsd[frame.group].gsd_m, band_means)
        folder = write_scene_folder(rf, Path(workdir) / frame.name)
        scene = load_labelled_scene(folder)
        scene.scene_id = frame.name
        ign = np.asarray([c is None for c in rf.classes], dtype=bool)
        ignore = box_table(rf.boxes[ign], rf.classes[ign], scene.transform, str(scene.crs))
        out[frame.name] = KitScene(frame.name, frame.group, scene, ignore)
    return out


@dataclass
class Rates:
    """Pooled true/false positives and misses; precision, recall and F1 from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Rates) -> Rates:
        return Rates(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def as_dict(self) -> dict[str, Any]:
        p, r, f = precision_recall_f1(self.tp, self.fp, self.fn)
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": p, "recall": r, "f1": f}


@dataclass
class FrameScore:
    """Scores of one frame: rates for all vehicles (class-agnostic), cars and large vehicles."""

    name: str
    rates: dict[str, Rates]
    predictions: int
    dropped_on_ignore: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def score_scene(model: LoadedModel, ks: KitScene, *, radius_m: float = RADIUS_M, device: str = "cpu") -> FrameScore:
    """Run ``model`` on one scene through the project's detect path and score it.

    Matching is the project's (:func:`baseline.evaluate.vehicle_metrics`: centres
    within ``radius_m``, one-to-one, per class on its own); predictions whose
    centre matches a don't-care box are dropped first.
    """
    t0 = time.perf_counter()
    pred, _ = predict_vehicles(model, ks.scene, device=device)
    dropped = 0
    if len(ks.ignore) and len(pred):
        m = match_vehicles(pred, ks.ignore, radius_m)
        keep = np.ones(len(pred), dtype=bool)
        keep[m.pred] = False
        dropped = int((~keep).sum())
        pred = pred[keep].reset_index(drop=True)
    truth = ks.scene.vehicles
    metrics = vehicle_metrics(pred.drop(columns=["on_road"]), truth, radius_m)
    rates = {"all": Rates(metrics["vehicle_tp"], metrics["vehicle_fp"], metrics["vehicle_fn"])}
    for cls in ("car", "large"):
        rates[cls] = Rates(metrics[f"vehicle_tp_{cls}"], metrics[f"vehicle_fp_{cls}"], metrics[f"vehicle_fn_{cls}"])
    extra = {"class_accuracy": metrics.get("vehicle_class_accuracy"), "distance_mean_m": metrics.get("vehicle_distance_mean_m")}
    return FrameScore(ks.name, rates, len(pred), dropped, time.perf_counter() - t0, extra)


def pool(scores: list[FrameScore]) -> dict[str, Rates]:
    """Rates summed over frames (micro average)."""
    total = {k: Rates() for k in RATE_KEYS}
    for s in scores:
        total = {k: total[k].add(s.rates[k]) for k in RATE_KEYS}
    return total


def finetune(
    model: LoadedModel,
    scenes: list[LabelledScene],
    out: Path,
    *,
    minutes: float,
    iterations: int | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    batch_size: int = 16,
    crop_px: int = 128,
    progress: bool = False,
) -> tuple[LoadedModel, FitRecord]:
    """Fine-tune a copy of ``model``'s network on ``scenes``; save to ``out`` and reload.

    Runs for ``iterations`` steps when given (the same result on any machine,
    however loaded), else for ``minutes`` of wall time (as many steps as the
    machine manages). Uses the project's vehicle sampler (crops centred mostly on vehicles,
    flips/rotations, photometric jitter), loss and optimisation loop (AdamW,
    one-cycle schedule annealed to the run's length), keeping the shipped
    input normalisation. ``out`` is ``<folder>/<name>/<version>``; the saved card
    says what the weights were tuned on and that they are for evaluation only.
    """
    # fresh from disk: scoring may have folded the loaded network's batch norms for inference
    network = load_model_dir(model.path).network.float()
    settings = VehicleTrainSettings(
        epochs=1000, iters_per_epoch=100, batch_size=batch_size, crop_px=crop_px, lr=lr, seed=seed, max_minutes=minutes,
        widths=tuple(model.card["architecture"]["config"].get("widths", (16, 32, 64, 96))),
    )
    sampler = VehicleSampler(scenes, settings, model.mean, model.std)
    device = torch.device("cpu")
    steps = iterations if iterations else settings.epochs * settings.iters_per_epoch
    record = fit(network, sampler, vehicle_loss, iterations=steps, lr=lr, device=device, seed=seed,
                 max_seconds=None if iterations else 60.0 * minutes, desc="fine-tune", progress=progress)
    out = Path(out)
    card = {k: copy.deepcopy(v) for k, v in model.card.items() if k not in ("evaluation", "weights_sha256", "weights_dtype")}
    card.update(
        name=out.parent.name, version=out.name,
        summary=f"{model.label} fine-tuned on real KIT AIS Munich frames (RGB, NIR stand-in {NIR_FROM_RED} x red).",
        data_note=("Started from " + model.label + "; fine-tuned on KIT AIS Data Set frames (CC BY 3.0, "
                   "'KIT AIS Data Set') with labels from jekhor/aerial-cars-dataset, which state no licence."),
        limits="Evaluation only: tuned on labels without a licence; never ship these weights.",
        training={**training_block(record, scenes, {**settings.__dict__, "widths": list(settings.widths),
                                                    "init": model.label}, device)},
    )
    out.mkdir(parents=True, exist_ok=True)
    save_model(network.cpu(), card, out)
    return load_model_dir(out), record
