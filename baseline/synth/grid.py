"""The pixel grids a scene is drawn on, and rasterising geometry onto them.

A :class:`Grid` is a north-up UTM pixel grid (transform, shape, CRS). The VHR
image and the Sentinel-2 image share their top-left corner, which is snapped to
a multiple of 10 m, so every Sentinel-2 pixel is an exact block of ground of the
VHR image. Rasterising goes through ``rasterio.features.rasterize`` (GDAL, pixel
centre rule), never Python loops over pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS
from rasterio.features import rasterize

S2_GSD_M = 10.0


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: ``width`` x ``height`` pixels of ``gsd`` metres from ``(x0, y0)`` (top left)."""

    x0: float
    y0: float
    gsd: float
    width: int
    height: int
    crs: CRS

    def __repr__(self) -> str:
        epsg = self.crs.to_epsg()
        return (f"Grid({self.width}x{self.height} px of {self.gsd:g} m from ({self.x0:g}, {self.y0:g}), "
                f"{f'EPSG:{epsg}' if epsg else self.crs.name})")

    @classmethod
    def covering(cls, bounds: tuple[float, float, float, float], gsd: float, crs: CRS) -> Grid:
        """The grid with its top-left corner at ``(xmin, ymax)`` that covers ``bounds``."""
        xmin, ymin, xmax, ymax = bounds
        width = max(1, math.ceil((xmax - xmin) / gsd - 1e-9))
        height = max(1, math.ceil((ymax - ymin) / gsd - 1e-9))
        return cls(float(xmin), float(ymax), float(gsd), width, height, crs)

    @property
    def transform(self) -> Affine:
        """GDAL-style affine transform of the grid."""
        return Affine(self.gsd, 0.0, self.x0, 0.0, -self.gsd, self.y0)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the grid's outer edges."""
        return self.x0, self.y0 - self.height * self.gsd, self.x0 + self.width * self.gsd, self.y0

    def box(self) -> shapely.Polygon:
        """The grid's extent as a polygon."""
        return shapely.box(*self.bounds)

    def xy(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of pixel centres."""
        return self.x0 + (cols + 0.5) * self.gsd, self.y0 - (rows + 0.5) * self.gsd

    def rowcol(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, col) of map coordinates (pixel centres at .5)."""
        return (self.y0 - np.asarray(y)) / self.gsd, (np.asarray(x) - self.x0) / self.gsd

    def mask(self, geoms: Iterable[shapely.Geometry] | np.ndarray, *, all_touched: bool = False) -> np.ndarray:
        """Boolean raster, True where any of ``geoms`` covers the pixel centre."""
        geoms = self._visible(np.asarray(list(geoms) if not isinstance(geoms, np.ndarray) else geoms))
        if len(geoms) == 0:
            return np.zeros(self.shape, dtype=bool)
        out = rasterize(
            ((g, 1) for g in geoms), out_shape=self.shape, transform=self.transform,
            fill=0, dtype="uint8", all_touched=all_touched,
        )
        return out.view(bool)

    def ids(self, geoms: np.ndarray, values: np.ndarray, *, all_touched: bool = False) -> np.ndarray:
        """int32 raster burning ``values`` (non-zero); later geometries overwrite earlier ones."""
        geoms = np.asarray(geoms)
        values = np.asarray(values)
        keep = self._visible_index(geoms)
        if not keep.any():
            return np.zeros(self.shape, dtype=np.int32)
        return rasterize(
            zip(geoms[keep], values[keep].astype(np.int32).tolist(), strict=True),
            out_shape=self.shape, transform=self.transform, fill=0, dtype="int32",
            all_touched=all_touched,
        )

    def _visible_index(self, geoms: np.ndarray) -> np.ndarray:
        if len(geoms) == 0:
            return np.zeros(0, dtype=bool)
        return ~shapely.is_empty(geoms) & shapely.intersects(geoms, self.box())

    def _visible(self, geoms: np.ndarray) -> np.ndarray:
        return geoms[self._visible_index(geoms)]


def area_weights(fine_n: int, fine_res: float, coarse_n: int, coarse_res: float) -> np.ndarray:
    """(coarse_n, fine_n) matrix of the fraction of each coarse cell covered by each fine cell.

    Both axes start at the same edge. Row ``i`` sums to the covered share of
    coarse cell ``i`` times ``coarse_res / fine_res``; used as
    ``W_rows @ image @ W_cols.T`` it gives exact area sums, so averages of
    built-up fraction and of reflectance are physically consistent.
    """
    fine_edges = np.arange(fine_n + 1) * fine_res
    coarse_edges = np.arange(coarse_n + 1) * coarse_res
    lo = np.maximum(coarse_edges[:-1, None], fine_edges[None, :-1])
    hi = np.minimum(coarse_edges[1:, None], fine_edges[None, 1:])
    return (np.clip(hi - lo, 0.0, None) / fine_res).astype(np.float32)
