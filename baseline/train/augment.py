"""Augmentation: the eight flips/rotations of a square crop, and photometric jitter.

A geometric transform moves more than pixels: directions drawn in the labels
(vehicle headings and displacements; for buildings the shadow, whose target
raster is transformed with the image, which is the same as changing the sun
azimuth) must move with it. :class:`Dihedral` applies one of the eight
symmetries of the square to (C, H, W) rasters and to pixel-frame points and
vectors consistently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Dihedral:
    """Transpose (swap rows and cols) first, then flip rows, then flip cols."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    @classmethod
    def random(cls, rng: np.random.Generator) -> Dihedral:
        t, r, c = rng.integers(0, 2, size=3).astype(bool)
        return cls(bool(t), bool(r), bool(c))

    def raster(self, array: np.ndarray) -> np.ndarray:
        """Apply to a (C, H, W) array (square when transposing)."""
        out = np.swapaxes(array, -1, -2) if self.transpose else array
        if self.flip_rows:
            out = out[..., ::-1, :]
        if self.flip_cols:
            out = out[..., :, ::-1]
        return np.ascontiguousarray(out)

    def points(self, rc: np.ndarray, size: int) -> np.ndarray:
        """Apply to (n, 2) continuous (row, col) positions in a ``size`` square (edges at 0 and size)."""
        out = rc[:, ::-1].copy() if self.transpose else rc.copy()
        if self.flip_rows:
            out[:, 0] = size - out[:, 0]
        if self.flip_cols:
            out[:, 1] = size - out[:, 1]
        return out

    def vectors(self, v: np.ndarray) -> np.ndarray:
        """Apply to (n, 2) (drow, dcol) direction vectors."""
        out = v[:, ::-1].copy() if self.transpose else v.copy()
        if self.flip_rows:
            out[:, 0] = -out[:, 0]
        if self.flip_cols:
            out[:, 1] = -out[:, 1]
        return out


def photometric(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Brightness, per-band gain, contrast, blur and noise jitter on (C, H, W) reflectance."""
    out = image.astype(np.float32, copy=True)
    gain = rng.uniform(1 - 0.2 * strength, 1 + 0.25 * strength)
    band_gain = rng.uniform(1 - 0.06 * strength, 1 + 0.06 * strength, size=(out.shape[0], 1, 1))
    out *= np.float32(gain) * band_gain.astype(np.float32)
    contrast = rng.uniform(1 - 0.15 * strength, 1 + 0.15 * strength)
    mean = out.mean(axis=(1, 2), keepdims=True)
    out = (out - mean) * np.float32(contrast) + mean
    if rng.random() < 0.2 * strength:
        sigma = rng.uniform(0.3, 0.9)
        out = ndimage.gaussian_filter(out, sigma=(0, sigma, sigma))
    noise = rng.uniform(0.0, 0.012 * strength)
    if noise > 0:
        out += rng.normal(0.0, noise, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.5)


# Panchromatic response over (blue, green, red, nir): a broad 450-900 nm band
# weighs the visible and the near-infrared about equally.
PAN_WEIGHTS = (0.2, 0.3, 0.3, 0.2)
# Leaf-off vegetation (bare branches over litter and soil), relative spectrum
# over (blue, green, red, nir): brown-grey, with a weak near-infrared plateau.
DORMANT_SPECTRUM = (0.055, 0.075, 0.095, 0.15)


@dataclass(frozen=True)
class SensorAugment:
    """What changes between sensors, dates and suns, drawn per crop.

    Renders and labelled scenes come from one sensor at one GSD, in one
    season; a model that should read other imagery has to see those changes
    in training. Each crop independently may be:

    - seen by a **coarser sensor**: the crop is averaged down to a GSD drawn
      from ``gsd_m`` to ``max_gsd_m`` and resampled back bilinearly, which is
      what inference does to 0.4-0.6 m imagery (it resamples to the model's
      GSD);
    - **panchromatic**: every band replaced by one broad-band grey
      (:data:`PAN_WEIGHTS`), as a pan-only product fed through the same bands;
    - **leaf-off**: vegetation (by NDVI) turned towards the brown-grey of
      bare branches (:data:`DORMANT_SPECTRUM`), keeping its texture;
    - lit by a **different sky**: ground shadow made darker or brighter
      (hazy skies fill shadows in), where the shadow target says shadow is.

    Geometry is never changed here, so the targets stay valid. Band-timing
    motion would be destroyed by the panchromatic draw, which is why the
    vehicle trainer does not use it.
    """

    gsd_m: float = 0.3
    max_gsd_m: float = 0.6
    p_coarser: float = 0.4
    p_pan: float = 0.15
    p_leaf_off: float = 0.25
    p_sky: float = 0.3

    def __call__(self, image: np.ndarray, rng: np.random.Generator, shadow: np.ndarray | None = None) -> np.ndarray:
        """Apply the drawn changes to a (C, H, W) reflectance crop; ``shadow`` is an (H, W) 0/1 map or None."""
        out = image
        if rng.random() < self.p_leaf_off:
            out = leaf_off(out, float(rng.uniform(0.4, 1.0)), float(rng.uniform(0.8, 1.25)))
        if shadow is not None and rng.random() < self.p_sky:
            out = shadow_light(out, shadow, float(rng.uniform(0.75, 1.5)))
        if self.max_gsd_m > self.gsd_m and rng.random() < self.p_coarser:
            out = coarser_sensor(out, float(rng.uniform(self.gsd_m, self.max_gsd_m)) / self.gsd_m)
        if rng.random() < self.p_pan:
            out = panchromatic(out)
        return out

    def describe(self) -> dict[str, float]:
        """The draw probabilities and ranges, for the model card."""
        return dict(self.__dict__)


def coarser_sensor(image: np.ndarray, factor: float) -> np.ndarray:
    """(C, H, W) as a sensor ``factor`` times coarser would see it, resampled back to the same grid.

    Area-averaged down (the detector's footprint) and bilinear back up, as
    :mod:`baseline.preprocess.tiles` resamples finer-than-model imagery.
    """
    if factor <= 1.0:
        return image
    import torch
    from torch.nn import functional as F

    c, h, w = image.shape
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    x = F.interpolate(x, size=small, mode="bilinear", antialias=True, align_corners=False)
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    return x[0].numpy()


def panchromatic(image: np.ndarray) -> np.ndarray:
    """Every band replaced by the broad-band grey (:data:`PAN_WEIGHTS` for four bands, else equal weights)."""
    c = image.shape[0]
    weights = np.asarray(PAN_WEIGHTS if c == len(PAN_WEIGHTS) else [1.0 / c] * c, np.float32)
    grey = np.tensordot(weights, image.astype(np.float32), axes=1)
    return np.broadcast_to(grey, image.shape).astype(np.float32)


def leaf_off(image: np.ndarray, amount: float, brightness: float = 1.0) -> np.ndarray:
    """Vegetation in (blue, green, red, nir) turned towards :data:`DORMANT_SPECTRUM` by ``amount`` (0-1).

    Vegetation is weighted by NDVI (none below 0.25, full from 0.55); each
    pixel keeps its visible brightness (times ``brightness``), so crowns and
    gaps keep their texture. Images without four bands are returned as given.
    """
    if image.shape[0] != len(DORMANT_SPECTRUM):
        return image
    img = image.astype(np.float32, copy=False)
    red, nir = img[2], img[3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-4)
    weight = np.clip((ndvi - 0.25) / 0.3, 0.0, 1.0) * np.float32(amount)
    if not weight.any():
        return image
    shape = np.asarray(DORMANT_SPECTRUM, np.float32)[:, None, None]
    visible = img[:3].mean(axis=0)
    dormant = shape * (visible / shape[:3].mean() * np.float32(brightness))[None]
    return (img * (1.0 - weight) + dormant * weight).astype(np.float32)


def shadow_light(image: np.ndarray, shadow: np.ndarray, gain: float) -> np.ndarray:
    """Shadowed pixels scaled by ``gain`` (soft-edged by a one-pixel blur of the ``shadow`` map)."""
    soft = ndimage.gaussian_filter(shadow.astype(np.float32), 1.0)
    return (image * (1.0 + (np.float32(gain) - 1.0) * soft)[None]).astype(np.float32)
