"""Running a loaded network over chips: device choice, input preparation, batching.

Chips may come at any GSD; each is resampled to the model's GSD (area average
when coarsening), normalised with the card's band statistics (invalid pixels
set to the band mean, i.e. zero after normalisation) and padded to a multiple
of the network's stride. Chips of the same shape are batched together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from baseline.core.chips import Chip
from baseline.detect.weights import LoadedModel
from baseline.errors import InvalidValueError

CHIP_BANDS = ("blue", "green", "red", "nir")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InvalidValueError("device", device, "auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidValueError("device", device, "auto or cpu: no CUDA device is visible")
    return torch.device(device)


@dataclass
class PreparedChip:
    """A chip at the model's GSD: normalised (band, y, x) input and its valid mask.

    ``scale`` is chip pixels per model pixel (2.0 for a 0.3 m chip and a 0.6 m
    model); ``height``/``width`` are the real (unpadded) extent at model GSD.
    """

    chip: Chip
    image: np.ndarray
    valid: np.ndarray
    scale: float
    height: int
    width: int


def resample(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) to (C, *size): area averaging down, bilinear up."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    if size[0] < array.shape[-2]:
        out = F.interpolate(t, size=size, mode="area")
    else:
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return out[0].numpy()


def prepare_chip(chip: Chip, model: LoadedModel, multiple: int) -> PreparedChip:
    """Resample, normalise and pad one chip for ``model``."""
    if chip.pixels.shape[0] != len(model.bands):
        raise InvalidValueError("chip bands", chip.pixels.shape[0], f"{len(model.bands)} bands ({', '.join(model.bands)})")
    scale = model.gsd_m / chip.gsd_m
    real_h = chip.window.height
    real_w = chip.window.width
    pixels = chip.pixels[:, :real_h, :real_w].astype(np.float32)
    valid = chip.valid[:real_h, :real_w].astype(np.float32)
    if abs(scale - 1.0) > 1e-3:
        size = (max(1, round(real_h / scale)), max(1, round(real_w / scale)))
        pixels = resample(pixels, size)
        valid = resample(valid[None], size)[0]
    valid_b = valid > 0.5
    mean = np.asarray(model.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(model.std, dtype=np.float32)[:, None, None]
    image = (pixels - mean) / std
    image[:, ~valid_b] = 0.0
    h, w = valid_b.shape
    ph, pw = -h % multiple, -w % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "constant"
        image = np.pad(image, ((0, 0), (0, ph), (0, pw)), mode=mode)
        valid_b = np.pad(valid_b, ((0, ph), (0, pw)))
    return PreparedChip(chip, image, valid_b, scale, h, w)


def batches(items: Sequence[PreparedChip], batch_size: int) -> Iterator[list[PreparedChip]]:
    """Batches of prepared chips with equal padded shapes, in input order within a shape."""
    if batch_size < 1:
        raise InvalidValueError("batch size", batch_size, "1 or more")
    by_shape: dict[tuple[int, ...], list[PreparedChip]] = {}
    for item in items:
        by_shape.setdefault(item.image.shape, []).append(item)
    for group in by_shape.values():
        for i in range(0, len(group), batch_size):
            yield group[i : i + batch_size]


def run_network(model: LoadedModel, batch: list[PreparedChip], device: torch.device) -> np.ndarray:
    """The network's raw output for a batch, as a float32 numpy array (N, C, h, w)."""
    x = torch.from_numpy(np.stack([b.image for b in batch])).to(device)
    with torch.inference_mode():
        out = model.network(x)
    return out.float().cpu().numpy()


def model_on(model: LoadedModel, device: torch.device) -> LoadedModel:
    """Move ``model``'s network to ``device`` (in place) and return the model."""
    model.network.to(device).eval()
    return model
