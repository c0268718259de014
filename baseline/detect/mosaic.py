"""Stitching building maps across chips into one mosaic before finding instances.

A building larger than a chip's halo would be cut by any per-chip polygon
step, so building chips are not vectorised one by one. Instead each chip's
per-pixel maps (extent, boundary, shadow probabilities and height) are added
into a mosaic on the model's grid over the whole tile (or scene), weighted by a
taper that trusts chip centres more than chip edges, and instances, polygons
and shadow heights are found once on the stitched mosaic. Ownership (which
buildings this tile reports) is the union of the chips' cores, tested at each
building's centroid, so neighbouring tiles that share a halo do not double count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine

from baseline.core.chips import Chip

TAPER_PX = 16  # model pixels over which a chip's weight ramps up from its edge


def _taper(height: int, width: int, ramp: int, edges: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Weights rising linearly over ``ramp`` pixels from each inner edge (top, left, bottom, right)."""
    rows = np.arange(height, dtype=np.float32)
    cols = np.arange(width, dtype=np.float32)
    top, left, bottom, right = edges
    wr = np.ones(height, dtype=np.float32)
    wc = np.ones(width, dtype=np.float32)
    if top:
        wr = np.minimum(wr, (rows + 1) / ramp)
    if bottom:
        wr = np.minimum(wr, (height - rows) / ramp)
    if left:
        wc = np.minimum(wc, (cols + 1) / ramp)
    if right:
        wc = np.minimum(wc, (width - cols) / ramp)
    return np.clip(np.outer(wr, wc), 1e-3, 1.0)


@dataclass
class MosaicGrid:
    """The model-GSD grid of a mosaic: chip-window pixel frame scaled by ``scale``."""

    transform: Affine
    shape: tuple[int, int]
    scale: float  # chip pixels per mosaic pixel


class BuildingMosaic:
    """Accumulates per-chip building maps (C, h, w) into a weighted mean on one grid."""

    def __init__(self, grid: MosaicGrid, channels: int) -> None:
        self.grid = grid
        h, w = grid.shape
        self._sum = np.zeros((channels, h, w), dtype=np.float32)
        self._weight = np.zeros((h, w), dtype=np.float32)
        self.owned = np.zeros((h, w), dtype=bool)

    @classmethod
    def for_chips(cls, chips: list[Chip], model_gsd_m: float, channels: int) -> BuildingMosaic:
        """A mosaic covering every window of ``chips`` (which share one pixel frame) at ``model_gsd_m``."""
        first = chips[0]
        scale = model_gsd_m / first.gsd_m
        origin = first.transform @ Affine.translation(-first.window.col, -first.window.row)
        rows = max(c.window.row + c.window.height for c in chips)
        cols = max(c.window.col + c.window.width for c in chips)
        shape = (int(np.ceil(rows / scale)), int(np.ceil(cols / scale)))
        return cls(MosaicGrid(origin @ Affine.scale(scale), shape, scale), channels)

    def add(self, chip: Chip, maps: np.ndarray, valid: np.ndarray) -> None:
        """Add ``maps`` (C, h, w) of ``chip`` at model GSD; ``valid`` (h, w) masks what counts."""
        s = self.grid.scale
        r0 = int(round(chip.window.row / s))
        c0 = int(round(chip.window.col / s))
        H, W = self.grid.shape
        h = min(maps.shape[1], H - r0)
        w = min(maps.shape[2], W - c0)
        if h <= 0 or w <= 0:
            return
        edges = (r0 > 0, c0 > 0, r0 + h < H, c0 + w < W)
        weight = _taper(h, w, TAPER_PX, edges) * valid[:h, :w]
        self._sum[:, r0 : r0 + h, c0 : c0 + w] += maps[:, :h, :w] * weight
        self._weight[r0 : r0 + h, c0 : c0 + w] += weight
        cr0, cc0, cr1, cc1 = chip.window.core
        self.owned[
            int(round(cr0 / s)) : int(round(cr1 / s)), int(round(cc0 / s)) : int(round(cc1 / s))
        ] = True

    @property
    def covered(self) -> np.ndarray:
        """True where at least one valid chip pixel landed."""
        return self._weight > 0

    def mean(self) -> np.ndarray:
        """The weighted mean maps (C, H, W); 0 where nothing landed."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self._sum / self._weight
        out[:, ~self.covered] = 0.0
        return out
