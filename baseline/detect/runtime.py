"""Running a loaded network over chips: device, precision, input transfer, batching.

The accelerator is kept fed the way the issue on scale asks:

- **compact transfer**: a chip's pixels travel as the sensor's integer counts
  (uint16 or uint8) plus a validity byte; scaling to reflectance, clipping,
  normalisation with the card's band statistics (invalid pixels to the band
  mean, i.e. zero) and padding to the network's stride happen on the device;
- **mixed precision** (bf16 or fp16 autocast) and **channels-last** memory
  layout, chosen per device by :class:`InferenceSettings` (``auto``: bf16
  where the device runs it natively, else fp32);
- **batch norm folded into the convolutions** before inference (exact up to
  rounding): under autocast every batch norm otherwise runs in fp32 between
  bf16 convolutions, with two casts each (``baseline bench``, 2-core CPU: the
  networks alone 0.395 -> 0.441 km² per second; end to end unchanged there);
- **prefetch**: the next batch is stacked (into pinned memory when the device
  is CUDA) on a background thread while the current one runs, and copied with
  ``non_blocking``, so reading and decoding overlap with compute.

Chips at another GSD than the model's are resampled on the host first (area
average when coarsening); the pipeline reads tiles at the model's GSD already,
so that path is for direct library use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from baseline.core.chips import REFLECTANCE_MAX, Chip
from baseline.detect.weights import LoadedModel
from baseline.errors import InvalidValueError

CHIP_BANDS = ("blue", "green", "red", "nir")
Precision = Literal["auto", "fp32", "bf16", "fp16"]
PREFETCH_BATCHES = 2

log = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` is CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InvalidValueError("device", device, "auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidValueError("device", device, "auto or cpu: no CUDA device is visible")
    return torch.device(device)


@cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 beats fp32."""
    try:
        flags = open("/proc/cpuinfo").read()  # noqa: SIM115 - read once, cached
    except OSError:
        return False
    return any(f in flags for f in (" avx512_bf16", " amx_bf16"))


# (transpose, flip rows, flip cols) of each mirror image averaged, for 1, 2, 4 and 8 flips
FLIP_SETS: dict[int, tuple[tuple[bool, bool, bool], ...]] = {
    1: ((False, False, False),),
    2: ((False, False, False), (False, False, True)),
    4: ((False, False, False), (False, False, True), (False, True, False), (False, True, True)),
    8: tuple((t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)),
}


@dataclass(frozen=True)
class InferenceSettings:
    """How networks run: numeric precision and memory layout.

    ``precision`` ``auto`` picks bf16 on a CUDA device that supports it (fp16
    on older ones) and on a CPU with native bf16, else fp32. Mixed precision
    changes outputs by about one part in 300 (bf16's mantissa); the model cards'
    accuracy was measured in fp32, and ``baseline evaluate`` measures a run as
    it was made.
    """

    precision: Precision = "auto"
    channels_last: bool = True
    fuse_batchnorm: bool = True
    building_flips: int = 1  # building maps averaged over this many mirror images (1, 2, 4 or 8)

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise InvalidValueError("precision", self.precision, "auto, fp32, bf16 or fp16")
        if self.building_flips not in FLIP_SETS:
            raise InvalidValueError("building flips", self.building_flips, "1, 2, 4 or 8")

    def dtype_on(self, device: torch.device) -> torch.dtype | None:
        """The autocast dtype on ``device``, or None for plain fp32."""
        choice = self.precision
        if choice == "auto":
            if device.type == "cuda":
                choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            elif device.type == "cpu" and cpu_has_native_bf16():
                choice = "bf16"
            else:
                choice = "fp32"
        return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[choice]

    def describe(self, device: torch.device) -> str:
        """E.g. ``cpu bf16 channels-last`` (for logs and manifests)."""
        dtype = self.dtype_on(device)
        name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        return (f"{device.type} {name}" + (" channels-last" if self.channels_last else "")
                + (" bn-folded" if self.fuse_batchnorm else "")
                + (f" building-flips {self.building_flips}" if self.building_flips > 1 else ""))


FP32 = InferenceSettings(precision="fp32", channels_last=False)
"""Plain fp32, contiguous (batch norm folded, which is exact): the reference the model cards were scored with."""

UNOPTIMISED = InferenceSettings(precision="fp32", channels_last=False, fuse_batchnorm=False)
"""The network as loaded, fp32, contiguous: what a plain loop does (the bench's naive baseline)."""


@dataclass
class PreparedChip:
    """A chip ready to batch: its pixels at the model's GSD, unpadded, as stored.

    ``image`` is (band, height, width) in the chip's own dtype (integer counts
    or float reflectance) and ``dn_scale`` turns it into reflectance; ``valid``
    is (height, width) bool. ``scale`` is chip pixels per model pixel (2.0 for
    a 0.3 m chip and a 0.6 m model). ``padded`` is the valid mask padded to the
    network's multiple, as the network sees it.
    """

    chip: Chip
    image: np.ndarray
    valid: np.ndarray
    dn_scale: float
    scale: float
    multiple: int

    @property
    def height(self) -> int:
        return self.image.shape[1]

    @property
    def width(self) -> int:
        return self.image.shape[2]

    @property
    def padded(self) -> np.ndarray:
        ph, pw = -self.height % self.multiple, -self.width % self.multiple
        return np.pad(self.valid, ((0, ph), (0, pw))) if ph or pw else self.valid


def resample(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) to (C, *size): area averaging down, bilinear up."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    if size[0] < array.shape[-2]:
        out = F.interpolate(t, size=size, mode="area")
    else:
        out = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return out[0].numpy()


def prepare_chip(chip: Chip, model: LoadedModel, multiple: int) -> PreparedChip:
    """Check ``chip`` against ``model`` and bring it to the model's GSD (no copy when it is there)."""
    if chip.pixels.shape[0] != len(model.bands):
        raise InvalidValueError("chip bands", chip.pixels.shape[0], f"{len(model.bands)} bands ({', '.join(model.bands)})")
    scale = model.gsd_m / chip.gsd_m
    real_h, real_w = chip.window.height, chip.window.width
    pixels = chip.pixels[:, :real_h, :real_w]
    valid = chip.valid[:real_h, :real_w]
    dn_scale = chip.dn_scale
    if abs(scale - 1.0) > 1e-3:
        size = (max(1, round(real_h / scale)), max(1, round(real_w / scale)))
        pixels = resample(chip.reflectance[:, :real_h, :real_w], size)
        valid = resample(valid[None].astype(np.float32), size)[0] > 0.5
        dn_scale = 1.0
    return PreparedChip(chip, pixels, valid, float(dn_scale), scale, multiple)


def batches(items: Sequence[PreparedChip], batch_size: int) -> Iterator[list[PreparedChip]]:
    """Batches of prepared chips of equal shape and dtype, in input order within a group."""
    if batch_size < 1:
        raise InvalidValueError("batch size", batch_size, "1 or more")
    groups: dict[tuple, list[PreparedChip]] = {}
    for item in items:
        groups.setdefault((item.image.shape, item.image.dtype.str, item.dn_scale), []).append(item)
    for group in groups.values():
        for i in range(0, len(group), batch_size):
            yield group[i : i + batch_size]


@dataclass
class HostBatch:
    """One batch stacked on the host: counts (N, C, h, w) and validity (N, h, w) as uint8."""

    items: list[PreparedChip]
    image: torch.Tensor
    valid: torch.Tensor


def _stack(items: list[PreparedChip], pin: bool) -> HostBatch:
    """The batch's counts and validity in one array each, padded with invalid zeros to the network's multiple.

    Padding here, in the counts' own (2-byte) type and while the batch is
    copied anyway, spares a padded copy of the float input on the device.
    """
    first = items[0]
    h, w = first.height + (-first.height % first.multiple), first.width + (-first.width % first.multiple)
    image = np.zeros((len(items), first.image.shape[0], h, w), dtype=first.image.dtype)
    valid = np.zeros((len(items), h, w), dtype=bool)
    for k, item in enumerate(items):
        image[k, :, : item.height, : item.width] = item.image
        valid[k, : item.height, : item.width] = item.valid
    image, valid = torch.from_numpy(image), torch.from_numpy(valid.view(np.uint8))
    if pin:
        image, valid = image.pin_memory(), valid.pin_memory()
    return HostBatch(items, image, valid)


def host_batches(
    items: Sequence[PreparedChip], batch_size: int, device: torch.device, prefetch: int = PREFETCH_BATCHES
) -> Iterator[HostBatch]:
    """Stacked batches, the next ``prefetch`` built on a background thread while one is in use."""
    groups = list(batches(items, batch_size))
    pin = device.type == "cuda"
    if prefetch < 1 or len(groups) < 2:
        for group in groups:
            yield _stack(group, pin)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        pending = [pool.submit(_stack, g, pin) for g in groups[:prefetch]]
        for nxt in groups[prefetch:]:
            ready = pending.pop(0).result()
            pending.append(pool.submit(_stack, nxt, pin))
            yield ready
        for fut in pending:
            yield fut.result()


def normalise_on_device(
    batch: HostBatch,
    model: LoadedModel,
    device: torch.device,
    multiple: int,
    channels_last: bool,
    sun: np.ndarray | None = None,
) -> torch.Tensor:
    """Counts to the network's input on ``device``: reflectance, normalised, invalid (and padding) to 0.

    The batch arrives padded to the network's ``multiple`` (:func:`_stack`).
    A model that takes sun planes (:attr:`LoadedModel.sun_planes`) gets them
    after the bands, filled with ``sun`` (the shadow vector of
    :func:`baseline.detect.sun_planes.shadow_vector`; zeros when None). The
    input is built in place in one tensor: no concatenated or padded copies.
    """
    n, bands, h, w = batch.image.shape
    if h % multiple or w % multiple:
        raise InvalidValueError("batch size in pixels", f"{h} x {w}", f"multiples of {multiple} (host_batches pads)")
    dn_scale = batch.items[0].dn_scale
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    std = torch.tensor(model.std, dtype=torch.float32, device=device)[None, :, None, None]
    mean = torch.tensor(model.mean, dtype=torch.float32, device=device)[None, :, None, None]
    gain, offset = dn_scale / std, -mean / std  # (dn * scale - mean) / std in one multiply-add
    planes = 2 if model.sun_planes else 0
    with torch.inference_mode():
        x = torch.empty((n, bands + planes, h, w), dtype=torch.float32, device=device, memory_format=fmt)
        image = x[:, :bands] if planes else x
        image.copy_(batch.image.to(device, non_blocking=True))  # counts to float32 in one pass
        valid = batch.valid.to(device, non_blocking=True)[:, None]
        image.clamp_(max=REFLECTANCE_MAX / dn_scale)
        image.mul_(gain).add_(offset).mul_(valid)  # invalid pixels to 0, the band mean
        if planes:
            vector = torch.zeros(2) if sun is None else torch.as_tensor(np.asarray(sun, np.float32))
            x[:, bands:] = vector.to(device)[None, :, None, None]
    return x


def forward(model: LoadedModel, x: torch.Tensor, settings: InferenceSettings) -> torch.Tensor:
    """The network on an input already on its device, under ``settings``' precision."""
    dtype = settings.dtype_on(x.device)
    with torch.inference_mode():
        if dtype is None:
            return model.network(x)
        with torch.autocast(device_type=x.device.type, dtype=dtype):
            return model.network(x)


def _mirror(x: torch.Tensor, transpose: bool, rows: bool, cols: bool, *, undo: bool = False) -> torch.Tensor:
    dims = [d for d, on in ((-2, rows), (-1, cols)) if on]
    if not undo:
        x = x.transpose(-1, -2) if transpose else x
        return x.flip(dims) if dims else x
    x = x.flip(dims) if dims else x
    return x.transpose(-1, -2) if transpose else x


def forward_flip_averaged(model: LoadedModel, x: torch.Tensor, settings: InferenceSettings, flips: int) -> torch.Tensor:
    """The mean (float32) of the network's outputs over ``flips`` mirror images of ``x``, each mirrored back.

    Test-time augmentation for networks whose every output channel is a
    scalar map (the building model: extent, boundary, shadow logits and
    height), which a mirror image maps onto itself; not for outputs that hold
    directions (the vehicle model's offsets and angles). The building model
    was trained on all eight mirror images, so each is a fair second look.
    """
    if flips == 1:
        return forward(model, x, settings)
    total = None
    for t, r, c in FLIP_SETS[flips]:
        mirrored = _mirror(x, t, r, c)
        if t and settings.channels_last:
            mirrored = mirrored.contiguous(memory_format=torch.channels_last)
        out = _mirror(forward(model, mirrored, settings).float(), t, r, c, undo=True)
        total = out if total is None else total + out
    return total / flips


def run_batches(
    model: LoadedModel,
    items: Sequence[PreparedChip],
    device: torch.device,
    *,
    batch_size: int,
    settings: InferenceSettings,
    sun: np.ndarray | None = None,
    flips: int = 1,
) -> Iterator[tuple[list[PreparedChip], np.ndarray]]:
    """Each batch with the network's raw output as float32 numpy (N, C, h', w').

    ``sun`` fills the sun planes of a model that takes them (see
    :func:`normalise_on_device`); the chips are all of one scene. ``flips`` > 1
    averages over mirror images (:func:`forward_flip_averaged`).
    """
    if not items:
        return
    multiple = items[0].multiple
    model_on(model, device, settings)
    for batch in host_batches(items, batch_size, device):
        x = normalise_on_device(batch, model, device, multiple, settings.channels_last, sun)
        out = forward_flip_averaged(model, x, settings, flips)
        yield batch.items, out.float().cpu().numpy()


def model_on(model: LoadedModel, device: torch.device, settings: InferenceSettings = FP32) -> LoadedModel:
    """Move ``model``'s network to ``device`` in ``settings``' memory layout (in place) and return it.

    With ``settings.fuse_batchnorm`` the network is replaced by its inference
    form, batch norms folded into the convolutions before them. That form
    cannot be trained or saved (:func:`~baseline.detect.weights.save_model`
    refuses it): to fine-tune a model that has run, load it again.
    """
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    if settings.fuse_batchnorm:
        model.network = fold_batchnorm(model.network)
    model.network.to(device=device, memory_format=fmt).eval()
    return model


def fold_batchnorm(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``network`` in eval mode with each Conv2d -> BatchNorm2d pair folded into one Conv2d.

    Uses torch.fx (symbolic tracing) on a copy, so ``network`` itself stays
    usable; a network that cannot be traced, or has no batch norm, is
    returned as it is.

    A network that calls one convolution or batch norm more than once is
    returned unfolded too: torch.fx ``fuse`` folds a pair once per *call*,
    so such a network would be folded twice and silently give wrong maps.
    """
    if getattr(network, "_baseline_bn_folded", False) or not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in network.modules()
    ):
        return network.eval()
    from torch.fx.experimental.optimization import fuse

    try:
        shared = _conv_or_norm_called_more_than_once(network)
        folded = None if shared else fuse(network.eval(), inplace=False)
    except Exception as exc:  # tracing is best effort: the unfolded network gives the same result
        log.info("batch norm left unfolded in %s: %s", type(network).__name__, exc)
        return network.eval()
    if folded is None:
        log.warning(
            "batch norm left unfolded in %s: %s called more than once, which folding would corrupt; "
            "running unfolded (exact, slightly slower)",
            type(network).__name__, ", ".join(shared),
        )
        return network.eval()
    folded._baseline_bn_folded = True
    return folded.eval()


def _conv_or_norm_called_more_than_once(network: torch.nn.Module) -> list[str]:
    """Names of the Conv2d and batch-norm modules that ``network``'s traced graph calls more than once."""
    from torch.fx import symbolic_trace

    calls: dict[str, int] = {}
    for node in symbolic_trace(network).graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    kinds = (torch.nn.Conv2d, torch.nn.modules.batchnorm._BatchNorm)
    return sorted(t for t, n in calls.items() if n > 1 and isinstance(network.get_submodule(t), kinds))
