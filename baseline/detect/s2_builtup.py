"""Built-up fraction and mean building height per 10 m pixel from Sentinel-2 L2A.

At 10 m a building is a few pixels at most, so Sentinel-2 cannot give
footprints (docs: DESIGN.md, "What each sensor can honestly see"); what it can
give is, per pixel, the **share of the pixel covered by building footprints**
(0 to 1) and the **mean height of that built area** (metres, footprint-area
weighted). Those are what this module predicts; :mod:`baseline.aggregate.builtup`
sums them into H3 cells (built-up fraction, mean height, built volume).

Why a network, and why this one. Roofs, asphalt and bare ground have similar
visible and near-infrared reflectance at 10 m, so the fraction is read from
texture and context as much as from colour; the height is read from the
shadows, which a building casts ``height / tan(sun elevation)`` metres away
from the sun (a 30 m block at a 30 degree sun: 52 m, five pixels). The
network (:class:`BuiltupNet`) is fully convolutional: 3x3 convolutions with
dilations 1, 2, 4, 8, 4, 1 (receptive field 41 pixels, 410 m: wide enough to
see a 150 m shadow on either side), about 32k weights at the shipped width of 24. The sun is an input
(:func:`sun_channels`, from the scene's metadata, as every L2A product carries
it): the shadow's direction and its length per metre of height, given to
every layer, since the same shadow means a different height under a
different sun. Trained only on the project's renders
(``scripts/train_s2_builtup.py``, a spatial split of central Helsinki) and
shipped as safetensors in ``models/s2-builtup/<version>/``.

Measured (``scripts/score_s2_builtup.py``): see
``models/s2-builtup/1.0.0/MODEL_CARD.md`` and its ``metrics.json``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import shapely
import torch
from affine import Affine
from rasterio.features import rasterize
from torch import nn
from torch.nn import functional as F

from baseline.preprocess.sentinel2 import WINDOW_PX, plan_windows, window_reflectance

if TYPE_CHECKING:
    from baseline.core.scene import Scene

BANDS = ("blue", "green", "red", "nir")
"""Band order of ``reflectance`` (Sentinel-2 B02, B03, B04, B08)."""
MODEL_NAME, MODEL_VERSION = "s2-builtup", "1.0.0"
N_IMAGE = 8
"""Image channels of :func:`input_features`: four bands, brightness, NDVI, the blue-red difference, validity."""
N_SUN = 3
"""Sun channels of :func:`sun_channels`: shadow direction (rows, cols) times its length per metre of height, and
that length."""
HEIGHT_SCALE_M = 20.0
"""The height output is in units of this many metres (keeps the output near 1)."""


# --- inputs ---------------------------------------------------------------------------------------


def input_features(reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The network's ``(8, y, x)`` image input from ``(4, y, x)`` reflectance (blue, green, red, nir; 0-1).

    Channels: each band scaled (x5, so typical urban reflectance is near 0.5 to 1),
    the visible brightness (x5), NDVI, blue minus red (x10: water and shade are
    blue, roofs and soil are not) and the validity mask. All are 0 outside
    ``valid`` (nodata, cloud), and the mask tells the network so.
    """
    refl = np.asarray(reflectance, dtype=np.float32)[:4]
    valid = np.asarray(valid, dtype=bool) & np.isfinite(refl).all(axis=0)
    refl = np.nan_to_num(refl, nan=0.0)
    feats = np.zeros((N_IMAGE, *valid.shape), dtype=np.float32)
    feats[:4] = 5.0 * refl
    feats[4] = 5.0 * refl[:3].mean(axis=0)
    feats[5] = (refl[3] - refl[2]) / np.maximum(refl[3] + refl[2], 0.01)
    feats[6] = 10.0 * (refl[0] - refl[2])
    feats[7] = valid
    feats[:, ~valid] = 0.0
    feats[7] = valid
    return np.clip(feats, -10.0, 10.0)


def sun_channels(sun_elevation_deg: float, sun_azimuth_deg: float) -> np.ndarray:
    """``(3,)``: where a building's shadow falls, per metre of its height, in pixels of 10 m.

    The shadow points away from the sun (azimuth + 180 degrees) and is
    ``1 / tan(elevation)`` metres long per metre of height. Returned as (rows
    down, cols right) components, x10 to make them pixels per 10 m of height,
    and the length alone. A 25 degree sun gives 2.1 pixels per 10 m of height,
    a 65 degree sun 0.47.
    """
    if not 0.0 < sun_elevation_deg <= 90.0:
        raise ValueError(f"sun elevation {sun_elevation_deg} is not in (0, 90] degrees")
    length = 1.0 / math.tan(math.radians(sun_elevation_deg))
    away = math.radians(sun_azimuth_deg + 180.0)
    # compass: east = sin, north = cos; rows grow southwards
    return np.array([-math.cos(away) * length, math.sin(away) * length, length], dtype=np.float32)


# --- the network ----------------------------------------------------------------------------------


class BuiltupNet(nn.Module):
    """3x3 convolutions (width ``width``) with the given dilations and ReLU, the sun's three channels
    concatenated to every layer's input, and a 1x1 head: the built-up fraction's logit and the height
    (softplus, in units of :data:`HEIGHT_SCALE_M`). Receptive field: ``1 + 2 * sum(dilations)`` pixels."""

    def __init__(self, width: int = 32, dilations: tuple[int, ...] = (1, 2, 4, 8, 4, 1)) -> None:
        super().__init__()
        self.dilations = tuple(dilations)
        convs = []
        channels = N_IMAGE
        for d in self.dilations:
            convs.append(nn.Conv2d(channels + N_SUN, width, 3, padding=d, dilation=d))
            channels = width
        self.convs = nn.ModuleList(convs)
        self.head = nn.Conv2d(width + N_SUN, 2, 1)

    def forward(self, image: torch.Tensor, sun: torch.Tensor) -> torch.Tensor:
        """``image`` ``(n, 8, y, x)``, ``sun`` ``(n, 3)`` -> ``(n, 2, y, x)``: fraction logit, raw height."""
        s = sun[:, :, None, None].expand(-1, -1, *image.shape[2:])
        x = image
        for conv in self.convs:
            x = F.relu(conv(torch.cat([x, s], dim=1)))
        return self.head(torch.cat([x, s], dim=1))


def decode(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fraction 0-1, height in metres >= 0) from the network's raw ``(n, 2, y, x)`` output."""
    return torch.sigmoid(raw[:, 0]), HEIGHT_SCALE_M * F.softplus(raw[:, 1])


def default_model_dir() -> Path:
    """``models/s2-builtup/<version>`` under the project's models folder."""
    from baseline.detect.weights import default_models_dir

    return default_models_dir() / MODEL_NAME / MODEL_VERSION


@lru_cache(maxsize=4)
def load_builtup_net(folder: str | None = None) -> BuiltupNet:
    """The shipped network in eval mode (safetensors only; ``card.json`` gives its width and dilations)."""
    from safetensors.torch import load_file

    path = Path(folder) if folder else default_model_dir()
    arch = json.loads((path / "card.json").read_text())["architecture"]
    net = BuiltupNet(int(arch["width"]), tuple(int(d) for d in arch["dilations"]))
    net.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    return net.eval()


def builtup_maps(reflectance: np.ndarray, valid: np.ndarray, sun_elevation_deg: float, sun_azimuth_deg: float,
                 net: BuiltupNet | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per 10 m pixel: built-up fraction (0-1) and mean building height (m) of the built part.

    Args:
        reflectance: ``(4, y, x)`` L2A surface reflectance, 0-1, bands blue, green, red, nir (B02, B03, B04, B08).
        valid: ``(y, x)`` True where the pixel is clear and in the image.
        sun_elevation_deg, sun_azimuth_deg: the scene's sun (L2A metadata); heights are read from
            shadows, whose length depends on it.
        net: the network; the shipped one by default.

    Returns:
        ``(fraction, height_m)``, both ``(y, x)`` float32; 0 outside ``valid``. ``height_m`` is the
        predicted height of whatever building area the pixel holds; it means little where the fraction
        is near 0, which is why cell means weight it by the fraction.
    """
    net = net or load_builtup_net()
    feats = input_features(reflectance, valid)
    sun = sun_channels(sun_elevation_deg, sun_azimuth_deg)
    with torch.inference_mode():
        frac, height = decode(net(torch.from_numpy(feats)[None], torch.from_numpy(sun)[None]))
    ok = feats[7] > 0
    return np.where(ok, frac[0].numpy(), 0.0).astype(np.float32), np.where(ok, height[0].numpy(), 0.0).astype(
        np.float32)


HALO_PX = 24
"""Halo of a window (pixels): the network's receptive field reaches 20 pixels from its centre."""


def builtup_scene_maps(scene: Scene, *, window_px: int = WINDOW_PX, net: BuiltupNet | None = None,
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`builtup_maps` of a whole Sentinel-2 scene, read and computed window by window.

    Each window's core plus a :data:`HALO_PX` halo goes through the network, so
    every pixel sees what it would in one pass over the scene while the working
    memory stays that of one window (the network's activations are about 130 bytes
    a pixel). Returns ``(fraction, height_m, valid)`` on the scene's grid; those
    three maps (9 bytes a pixel) are what grows with the scene.
    """
    net = net or load_builtup_net()
    fraction = np.zeros(scene.shape, dtype=np.float32)
    height = np.zeros(scene.shape, dtype=np.float32)
    valid = np.zeros(scene.shape, dtype=bool)
    for window in plan_windows(scene.shape, HALO_PX, window_px):
        refl, ok = window_reflectance(scene, window)
        f, h = builtup_maps(refl, ok, scene.sun_elevation_deg, scene.sun_azimuth_deg, net=net)
        core = window.core_in_read
        fraction[window.core_slices], height[window.core_slices] = f[core], h[core]
        valid[window.core_slices] = ok[core]
    return fraction, height, valid


# --- the quantity, from footprints ----------------------------------------------------------------


def footprint_rasters(footprints: np.ndarray, heights: np.ndarray, transform: Affine, shape: tuple[int, int],
                      fine: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`builtup_maps` estimates, computed from footprints: per pixel of the grid
    ``(transform, shape)``, the footprint-covered fraction and the area-weighted mean height.

    The footprints are rasterised on a grid ``fine`` times finer (1 m for Sentinel-2; pixel-centre
    rule) and block-averaged. Where footprints overlap, the taller one keeps the overlap (as a roof
    seen from above does). Height is 0 where nothing is built. Used for training targets and truth.
    """
    h, w = shape
    frac = np.zeros(shape, dtype=np.float32)
    height = np.zeros(shape, dtype=np.float32)
    geoms = np.asarray(footprints, dtype=object)
    heights = np.asarray(heights, dtype=np.float64)
    keep = ~shapely.is_empty(geoms) & np.isfinite(heights) & (heights > 0)
    if not keep.any():
        return frac, height
    order = np.argsort(heights[keep], kind="stable")  # later burns overwrite earlier: the tallest wins
    geoms, heights = geoms[keep][order], heights[keep][order]
    fine_t = transform * Affine.scale(1.0 / fine)
    ids = rasterize(zip(geoms, range(1, len(geoms) + 1), strict=True), out_shape=(h * fine, w * fine),
                    transform=fine_t, fill=0, dtype="int32")
    table = np.concatenate([[0.0], heights]).astype(np.float32)
    built = (ids > 0).astype(np.float32).reshape(h, fine, w, fine).sum(axis=(1, 3))
    summed = table[ids].reshape(h, fine, w, fine).sum(axis=(1, 3))
    frac[:] = built / (fine * fine)
    np.divide(summed, built, out=height, where=built > 0)
    return frac, height


def model_entry(folder: str | None = None) -> dict[str, object]:
    """The network's manifest entry: name, version, task and the weights' sha256 (its scores, cell MAE of
    fraction and height, are in ``metrics.json`` beside it: they are not detection rates)."""
    from baseline.core.hashing import sha256_file

    path = Path(folder) if folder else default_model_dir()
    card = json.loads((path / "card.json").read_text())
    return {"name": card["name"], "version": card["version"], "task": card["task"], "precision": None,
            "recall": None, "f1": None, "weights_sha256": sha256_file(path / "model.safetensors")}
