"""Chips: the overlapping windows preprocess cuts and detect consumes.

Each chip has a *core*: the part of the window that it alone owns. A detection
is kept only when its centre falls in the core of the chip that saw it, so
overlaps are stitched without double counting (the cores tile the scene
exactly once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine

REFLECTANCE_MAX = 1.5
"""Reflectance is clipped here: above it is sensor saturation or glint, not signal."""


def to_reflectance(counts: np.ndarray, dn_scale: float) -> np.ndarray:
    """Sensor counts (or float reflectance with ``dn_scale`` 1) as float32 reflectance, clipped."""
    return np.minimum(counts.astype(np.float32) * np.float32(dn_scale), np.float32(REFLECTANCE_MAX))


@dataclass(frozen=True)
class ChipWindow:
    """Where a chip lies in its scene's pixel grid.

    ``row``/``col`` are the top-left of the full window (halo included);
    ``core`` is (row0, col0, row1, col1) of the owned part, in scene pixels.
    """

    row: int
    col: int
    height: int
    width: int
    core: tuple[int, int, int, int]

    def owns(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """True where scene pixel positions (float rows/cols) fall in this chip's core."""
        r0, c0, r1, c1 = self.core
        return (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)


def _starts(n: int, size: int, stride: int) -> list[int]:
    """Window starts along one axis: every ``stride``, the last flush with the edge."""
    if n <= size:
        return [0]
    return sorted(set(range(0, n - size, stride)) | {n - size})


def _core_spans(starts: list[int], n: int, size: int) -> list[tuple[int, int]]:
    """Split each overlap at its middle, so the spans partition ``[0, n)``."""
    bounds = [0]
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        bounds.append((b + min(a + size, n)) // 2)
    bounds.append(n)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def plan_windows(rows: int, cols: int, size: int, overlap: int) -> list[ChipWindow]:
    """Cover a ``rows`` x ``cols`` grid with ``size`` windows overlapping by at least ``overlap``.

    The cores of the windows partition the grid: every pixel is owned by exactly
    one window, and each core lies at least ``overlap // 2`` pixels inside its
    window on every inner edge.
    """
    if not 0 <= overlap < size // 2:
        from baseline.errors import InvalidValueError

        raise InvalidValueError("chip overlap", overlap, f"0 or more and less than half the chip size ({size})")
    stride = size - overlap
    row_starts, col_starts = _starts(rows, size, stride), _starts(cols, size, stride)
    row_spans = _core_spans(row_starts, rows, size)
    col_spans = _core_spans(col_starts, cols, size)
    windows = []
    for r, (r0, r1) in zip(row_starts, row_spans, strict=True):
        for c, (c0, c1) in zip(col_starts, col_spans, strict=True):
            windows.append(
                ChipWindow(r, c, min(size, rows - r), min(size, cols - c), (r0, c0, r1, c1))
            )
    return windows


@dataclass
class Chip:
    """One preprocessed window, ready for a model.

    ``pixels`` is ``(band, y, x)``: either the sensor's integer counts (uint8
    or uint16, as read, so that only those bytes travel to the accelerator and
    are normalised there) with ``dn_scale`` the reflectance of one count, or
    float32 reflectance with ``dn_scale`` 1. Invalid pixels are 0. ``valid`` is
    ``(y, x)`` bool; ``transform`` maps chip pixels to the scene CRS.
    """

    scene_id: str
    window: ChipWindow
    pixels: np.ndarray
    valid: np.ndarray
    transform: Affine
    gsd_m: float
    dn_scale: float = 1.0

    @property
    def reflectance(self) -> np.ndarray:
        """``pixels`` as float32 reflectance (a view when they already are)."""
        if self.pixels.dtype == np.float32 and self.dn_scale == 1.0:
            return self.pixels
        return to_reflectance(self.pixels, self.dn_scale)
