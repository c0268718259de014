"""Read one tile of a scene onto the city grid and cut it into chips.

Runs inside a Dask worker: it opens the scene's file itself (nothing large
travels over the network), reads only the tile's window plus halo through a
``WarpedVRT`` (reprojection to the city's UTM zone and resampling to the
model's GSD in one step: average when coarsening reflectance, nearest for
class bands), masks, normalises to reflectance and cuts overlapping chips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import from_bounds

from baseline.core.chips import Chip, ChipWindow, plan_windows
from baseline.core.scene import Scene
from baseline.errors import InputFileError
from baseline.preprocess.grid import CityGrid, TileSpec
from baseline.preprocess.masks import bright_cloud_mask, scl_unusable

REFLECTANCE_BANDS = ("blue", "green", "red", "nir")


@dataclass
class PreparedTile:
    """A tile's pixels on the city grid, its masks and its chips.

    ``pixels`` is (band, y, x) float32 reflectance, 0 where invalid; ``valid``
    excludes nodata and cloud; ``core_px`` is (row0, col0, row1, col1) of the
    tile's own core inside this window.
    """

    tile_id: str
    scene_id: str
    gsd_m: float
    transform: Affine
    pixels: np.ndarray
    valid: np.ndarray
    in_image: np.ndarray
    core_px: tuple[int, int, int, int]
    chips: list[Chip] = field(default_factory=list)

    @property
    def core_bounds(self) -> tuple[float, float, float, float]:
        """The core in grid CRS metres (xmin, ymin, xmax, ymax)."""
        r0, c0, r1, c1 = self.core_px
        x0, y0 = self.transform @ (c0, r0)
        x1, y1 = self.transform @ (c1, r1)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def core_stats(self) -> dict[str, int]:
        """Pixel counts inside the core, for valid fractions."""
        r0, c0, r1, c1 = self.core_px
        return {
            "pixels": int((r1 - r0) * (c1 - c0)),
            "in_image": int(self.in_image[r0:r1, c0:c1].sum()),
            "valid": int(self.valid[r0:r1, c0:c1].sum()),
        }


def _read_on_grid(
    href: Path, bands: list[int], grid: CityGrid, bounds: tuple[float, float, float, float], resampling: Resampling
) -> tuple[np.ndarray, np.ndarray, Affine]:
    """Read ``bands`` of ``href`` over ``bounds`` on ``grid``; also the warped validity mask."""
    try:
        src = rasterio.open(href)
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(href, f"cannot read ({exc})") from None
    with src, WarpedVRT(
        src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height, resampling=resampling
    ) as vrt:
        window = from_bounds(*bounds, transform=grid.transform).round_offsets().round_lengths()
        data = vrt.read(bands, window=window)
        mask = vrt.dataset_mask(window=window) > 0
        return data, mask, vrt.window_transform(window)


def prepare_tile(
    scene: Scene,
    grid: CityGrid,
    tile: TileSpec,
    *,
    halo_m: float,
    chip_px: int,
    overlap_px: int,
    cloud_scene: Scene | None = None,
) -> PreparedTile:
    """Everything a model needs for one tile: pixels on ``grid``, masks and chips.

    ``grid`` fixes CRS and GSD (the model's); ``cloud_scene`` is an optional
    Sentinel-2 scene of the same instant whose SCL masks cloud.
    """
    bounds = tile.window_bounds(halo_m, grid.bounds)
    coarsening = grid.gsd_m > scene.gsd_m * 1.01
    resampling = Resampling.average if coarsening else Resampling.bilinear
    band_idx = [scene.band_index(b) + 1 for b in REFLECTANCE_BANDS]
    raw, in_image, transform = _read_on_grid(Path(scene.href), band_idx, grid, bounds, resampling)
    reflectance = np.clip(raw.astype(np.float32) * np.float32(scene.scale), 0.0, 1.5)
    in_image &= raw.max(axis=0) > 0

    cloud = np.zeros_like(in_image)
    if cloud_scene is not None and "scl" in cloud_scene.bands:
        tile_grid = CityGrid(grid.crs, transform.c, transform.f, grid.gsd_m, in_image.shape[1], in_image.shape[0])
        scl, _, _ = _read_on_grid(
            Path(cloud_scene.href), [cloud_scene.band_index("scl") + 1], tile_grid, bounds, Resampling.nearest
        )
        cloud = scl_unusable(scl[0]) & in_image
    else:
        cloud = bright_cloud_mask(reflectance, grid.gsd_m) & in_image
    valid = in_image & ~cloud
    reflectance[:, ~valid] = 0.0

    x0, y0, x1, y1 = tile.core
    inv = ~transform
    c0, r0 = inv @ (x0, y1)
    c1, r1 = inv @ (x1, y0)
    core_px = (int(round(r0)), int(round(c0)), int(round(r1)), int(round(c1)))

    prepared = PreparedTile(
        tile_id=tile.tile_id,
        scene_id=scene.scene_id,
        gsd_m=grid.gsd_m,
        transform=transform,
        pixels=reflectance,
        valid=valid,
        in_image=in_image,
        core_px=core_px,
    )
    prepared.chips = cut_chips(prepared, chip_px, overlap_px)
    return prepared


def cut_chips(tile: PreparedTile, chip_px: int, overlap_px: int) -> list[Chip]:
    """Overlapping chips over the tile window; empty (all-invalid) chips are skipped."""
    rows, cols = tile.valid.shape
    chips = []
    for w in plan_windows(rows, cols, chip_px, overlap_px):
        valid = tile.valid[w.row : w.row + w.height, w.col : w.col + w.width]
        if not valid.any():
            continue
        pixels = tile.pixels[:, w.row : w.row + w.height, w.col : w.col + w.width]
        if w.height < chip_px or w.width < chip_px:  # pad edge chips to the model's size
            pad = ((0, 0), (0, chip_px - w.height), (0, chip_px - w.width))
            pixels = np.pad(pixels, pad)
            valid = np.pad(valid, pad[1:])
        chips.append(
            Chip(
                scene_id=tile.scene_id,
                window=ChipWindow(w.row, w.col, w.height, w.width, w.core),
                pixels=np.ascontiguousarray(pixels),
                valid=valid,
                transform=tile.transform @ Affine.translation(w.col, w.row),
                gsd_m=tile.gsd_m,
            )
        )
    return chips
