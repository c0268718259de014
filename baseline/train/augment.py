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
