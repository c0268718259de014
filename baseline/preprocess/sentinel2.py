"""Sentinel-2 scenes as reflectance and a valid mask, window by window, for the 10 m stages.

The very-high-resolution path reads tiles (:mod:`baseline.preprocess.tiles`);
the Sentinel-2 stages (moving trucks, built-up area estimates) read the scene
on its own grid in windows (:func:`plan_windows`): each window is a core plus
a halo wide enough for the stage's network and filters, so a pixel's result
does not depend on where the scene was cut, and the memory a stage needs does
not grow with the scene. Unusable pixels follow the same class-band rule as
every tile (:func:`class_band_unusable`: SCL cloud, cloud shadow and no data; a
``cloud_mask`` band where the scene carries one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from baseline.preprocess.masks import CLASS_BANDS, class_band_unusable

if TYPE_CHECKING:
    from baseline.core.scene import Scene

REFLECTANCE_BANDS = ("blue", "green", "red", "nir")
"""Band order of the reflectance the Sentinel-2 networks read (B02, B03, B04, B08)."""

WINDOW_PX = 2048
"""Core side of a window (20.5 km at 10 m): a few hundred MB of working memory in the stages."""


@dataclass(frozen=True)
class Window:
    """A part of the scene's grid: the pixels read (core plus halo, clipped to the scene) and the core.

    Both are ``(row0, row1, col0, col1)`` in scene pixels, ends exclusive.
    """

    read: tuple[int, int, int, int]
    core: tuple[int, int, int, int]

    @property
    def core_in_read(self) -> tuple[slice, slice]:
        """The core as slices of an array read over :attr:`read`."""
        r0, r1, c0, c1 = self.core
        return slice(r0 - self.read[0], r1 - self.read[0]), slice(c0 - self.read[2], c1 - self.read[2])

    @property
    def core_slices(self) -> tuple[slice, slice]:
        """The core as slices of a whole-scene array."""
        r0, r1, c0, c1 = self.core
        return slice(r0, r1), slice(c0, c1)

    def transform(self, scene_transform: Affine) -> Affine:
        """The georeference of an array read over :attr:`read`."""
        return scene_transform * Affine.translation(self.read[2], self.read[0])


def plan_windows(shape: tuple[int, int], halo_px: int, window_px: int = WINDOW_PX) -> list[Window]:
    """Cores of at most ``window_px`` that tile ``shape`` exactly, each read with ``halo_px`` around it."""
    if window_px < 1 or halo_px < 0:
        raise ValueError(f"window_px must be >= 1 and halo_px >= 0 (got {window_px}, {halo_px})")
    rows, cols = shape
    out = []
    for r0 in range(0, rows, window_px):
        r1 = min(rows, r0 + window_px)
        for c0 in range(0, cols, window_px):
            c1 = min(cols, c0 + window_px)
            read = (max(0, r0 - halo_px), min(rows, r1 + halo_px), max(0, c0 - halo_px), min(cols, c1 + halo_px))
            out.append(Window(read=read, core=(r0, r1, c0, c1)))
    return out


def window_reflectance(scene: Scene, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(4, y, x)`` float32 reflectance (blue, green, red, nir; 0-1) and the ``(y, x)`` valid mask,
    over ``window.read`` (the whole scene when None); only those pixels are read."""
    data, valid_da = scene.data, scene.valid
    if window is not None:
        r0, r1, c0, c1 = window.read
        data = data.isel(y=slice(r0, r1), x=slice(c0, c1))
        valid_da = valid_da.isel(y=slice(r0, r1), x=slice(c0, c1))
    idx = [scene.band_index(b) for b in REFLECTANCE_BANDS]
    refl = np.asarray(data[idx].values, dtype=np.float32) * np.float32(scene.scale)
    valid = np.asarray(valid_da.values, dtype=bool) & np.isfinite(refl).all(axis=0)
    for band in CLASS_BANDS:
        if band in scene.bands:
            valid &= ~class_band_unusable(band, np.asarray(data[scene.band_index(band)].values))
    return refl, valid


def scene_reflectance(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """The whole scene's reflectance and valid mask (:func:`window_reflectance` of everything)."""
    return window_reflectance(scene)
