"""Smooth random fields tied to map coordinates, for textures and clouds.

Value noise: pseudo-random values on a lattice of map coordinates (multiples of
``cell_m``), hashed from the seed and the lattice indices, interpolated
bilinearly at pixel centres. Because the lattice is fixed to the map, not to the
image, a crop gets the same texture as the full render at the same place. The
bilinear interpolation is two sparse matrix products (rows, then columns), so a
field over 20 million pixels costs a fraction of a second.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import sparse

from baseline.synth.grid import Grid

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed 64-bit hash of each value."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def lattice_values(ix: np.ndarray, iy: np.ndarray, seed: int, name: str) -> np.ndarray:
    """Uniform values in [-1, 1] at integer lattice points, fixed by (seed, name, ix, iy)."""
    key = np.uint64((seed * 0x9E3779B1 + zlib.crc32(name.encode())) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        h = _mix(ix.astype(np.int64).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ key)
        h = _mix(h ^ iy.astype(np.int64).view(np.uint64))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0


def _interp_matrix(centres: np.ndarray, cell_m: float, first: int, count: int) -> sparse.csr_matrix:
    """Sparse (len(centres), count) linear interpolation weights onto lattice nodes."""
    f = centres / cell_m - first
    i0 = np.clip(np.floor(f).astype(np.int64), 0, count - 2)
    w = (f - i0).clip(0.0, 1.0)
    n = len(centres)
    rows = np.repeat(np.arange(n), 2)
    cols = np.column_stack([i0, i0 + 1]).ravel()
    vals = np.column_stack([1.0 - w, w]).ravel().astype(np.float32)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n, count))


def value_noise(grid: Grid, cell_m: float, seed: int, name: str) -> np.ndarray:
    """Smooth noise in about [-1, 1] at every pixel centre of ``grid`` (float32)."""
    xmin, ymin, xmax, ymax = grid.bounds
    ix0, ix1 = int(np.floor(xmin / cell_m)) - 1, int(np.ceil(xmax / cell_m)) + 1
    iy0, iy1 = int(np.floor(ymin / cell_m)) - 1, int(np.ceil(ymax / cell_m)) + 1
    ix, iy = np.meshgrid(np.arange(ix0, ix1 + 1), np.arange(iy0, iy1 + 1))
    lattice = lattice_values(ix, iy, seed, name)  # (ny, nx), row = iy
    xs = grid.x0 + (np.arange(grid.width) + 0.5) * grid.gsd
    ys = grid.y0 - (np.arange(grid.height) + 0.5) * grid.gsd
    wx = _interp_matrix(xs, cell_m, ix0, ix1 - ix0 + 1)
    wy = _interp_matrix(ys, cell_m, iy0, iy1 - iy0 + 1)
    across = np.ascontiguousarray((wx @ lattice.T.astype(np.float32)).T)  # (ny, width)
    return np.asarray(wy @ across, dtype=np.float32)


def fbm(grid: Grid, cell_m: float, seed: int, name: str, octaves: int = 3, gain: float = 0.5) -> np.ndarray:
    """Fractal sum of value noise from ``cell_m`` down by halves, normalised to about [-1, 1]."""
    total = np.zeros(grid.shape, dtype=np.float32)
    amp, norm = 1.0, 0.0
    for k in range(octaves):
        total += np.float32(amp) * value_noise(grid, cell_m / 2**k, seed, f"{name}/{k}")
        norm += amp
        amp *= gain
    total /= np.float32(norm)
    return total
