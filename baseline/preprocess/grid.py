"""The city grid and its tiles.

The grid is a north-up raster in the city's UTM CRS. A scene already in that
CRS keeps its own pixel grid (no resampling; a coarser model GSD averages whole
blocks of pixels). A scene in another CRS is warped onto a grid whose origin is
snapped to a whole multiple of a coarse step, so runs over the same city line up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from pyproj import CRS, Transformer

from baseline.core.scene import Scene
from baseline.errors import InvalidValueError

SNAP_M = 30.0  # grid origins snap to this, a multiple of every GSD used (0.3, 0.6, 10, 30 m)


@dataclass(frozen=True)
class CityGrid:
    """A north-up grid: origin (x0, y0) is the top-left corner, in ``crs``."""

    crs: CRS
    x0: float
    y0: float
    gsd_m: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(self.gsd_m, 0.0, self.x0, 0.0, -self.gsd_m, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0 - self.height * self.gsd_m, self.x0 + self.width * self.gsd_m, self.y0)


@dataclass(frozen=True)
class TileSpec:
    """One unit of work: a core box the tile owns, in grid CRS metres.

    ``tile_id`` is stable across runs (row and column of the tile in the grid).
    """

    tile_id: str
    core: tuple[float, float, float, float]

    def window_bounds(self, halo_m: float, limit: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """The core grown by ``halo_m`` on every side, clipped to ``limit``."""
        x0, y0, x1, y1 = self.core
        lx0, ly0, lx1, ly1 = limit
        return (max(x0 - halo_m, lx0), max(y0 - halo_m, ly0), min(x1 + halo_m, lx1), min(y1 + halo_m, ly1))


def city_grid_for(scene: Scene, crs: CRS, gsd_m: float | None = None) -> CityGrid:
    """The grid in ``crs`` that covers ``scene``, at ``gsd_m`` (default the scene's)."""
    gsd = scene.gsd_m if gsd_m is None else gsd_m
    if gsd <= 0:
        raise InvalidValueError("gsd_m", gsd, "a positive number of metres")
    xmin, ymin, xmax, ymax = scene.bounds
    same_crs = CRS.from_user_input(scene.crs) == CRS.from_user_input(crs)
    ratio = gsd / scene.gsd_m
    if same_crs and abs(ratio - round(ratio)) < 1e-6 and round(ratio) >= 1:
        # the scene already lies on a grid of this CRS: keep its origin, so no pixel is resampled
        # (a coarser model GSD then averages whole blocks of scene pixels)
        x0, y1 = xmin, ymax
    else:
        if not same_crs:
            to_city = Transformer.from_crs(scene.crs, crs, always_xy=True)
            xmin, ymin, xmax, ymax = to_city.transform_bounds(xmin, ymin, xmax, ymax, densify_pts=21)
        x0 = math.floor(xmin / SNAP_M) * SNAP_M
        y1 = math.ceil(ymax / SNAP_M) * SNAP_M
    width = math.ceil(round((xmax - x0) / gsd, 6))
    height = math.ceil(round((y1 - ymin) / gsd, 6))
    return CityGrid(CRS.from_user_input(crs), x0, y1, gsd, width, height)


def plan_tiles(grid: CityGrid, tile_m: float) -> list[TileSpec]:
    """Cut the grid into square tiles of ``tile_m`` metres (the last row/column smaller)."""
    if tile_m <= 0:
        raise InvalidValueError("tile size", tile_m, "a positive number of metres")
    xmin, ymin, xmax, ymax = grid.bounds
    tiles = []
    rows = math.ceil(round((ymax - ymin) / tile_m, 6))
    cols = math.ceil(round((xmax - xmin) / tile_m, 6))
    for r in range(rows):
        for c in range(cols):
            tx0 = xmin + c * tile_m
            ty1 = ymax - r * tile_m
            core = (tx0, max(ty1 - tile_m, ymin), min(tx0 + tile_m, xmax), ty1)
            tiles.append(TileSpec(f"r{r:03d}c{c:03d}", core))
    return tiles
