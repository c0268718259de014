"""Preprocess: align a Scene to the city's UTM grid, mask, normalise and cut chips.

The unit of work is a *tile* of the city grid: a core that the tile alone owns
plus a halo that gives the models context. Tiles are read straight from the
scene's file through a warped view (reprojection and resampling happen there),
so memory per task stays flat whatever the city's size.
"""

from baseline.preprocess.grid import CityGrid, TileSpec, city_grid_for, plan_tiles
from baseline.preprocess.tiles import PreparedTile, crop_tile, prepare_tile

__all__ = ["CityGrid", "PreparedTile", "TileSpec", "city_grid_for", "crop_tile", "plan_tiles", "prepare_tile"]
