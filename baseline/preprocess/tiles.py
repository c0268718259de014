"""Read one tile of a scene onto the city grid and cut it into chips.

Runs inside a Dask worker: it opens the scene's file itself (nothing large
travels over the network), reads only the tile's window plus halo through a
``WarpedVRT`` (reprojection to the city's UTM zone and resampling to the
model's GSD in one step: average when coarsening reflectance, nearest for
class bands), masks, and cuts what each network sees: the tile's whole window
in one piece or the model card's overlapping chips (``preprocess.whole_window``
chooses per detector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds

from baseline.core.chips import Chip, ChipWindow, plan_windows, to_reflectance
from baseline.core.scene import Scene
from baseline.errors import InputFileError
from baseline.preprocess.grid import CityGrid, TileSpec
from baseline.preprocess.masks import CLASS_BANDS, bright_cloud_mask, class_band_unusable

REFLECTANCE_BANDS = ("blue", "green", "red", "nir")


@dataclass
class PreparedTile:
    """A tile's pixels on the city grid, its masks and its chips.

    ``pixels`` is (band, y, x) as the sensor stored it (integer counts,
    kept compact until they reach the model's device), 0 where invalid, and
    ``dn_scale`` the reflectance of one count; ``valid`` excludes nodata and
    cloud; ``core_px`` is (row0, col0, row1, col1) of the tile's own core
    inside this window.
    """

    tile_id: str
    scene_id: str
    gsd_m: float
    transform: Affine
    pixels: np.ndarray
    valid: np.ndarray
    in_image: np.ndarray
    core_px: tuple[int, int, int, int]
    dn_scale: float = 1.0
    chips: list[Chip] = field(default_factory=list)

    @property
    def reflectance(self) -> np.ndarray:
        """``pixels`` as float32 reflectance, clipped as the models expect."""
        return to_reflectance(self.pixels, self.dn_scale)

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


def _open(href: Path) -> rasterio.DatasetReader:
    """``rasterio.open`` with a typed error naming the file."""
    try:
        return rasterio.open(href)
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(href, f"cannot read ({exc})") from None


def _aligned_offset(src: rasterio.DatasetReader, grid: CityGrid) -> tuple[int, int] | None:
    """(col, row) of the grid's origin in ``src``'s pixels when ``src`` is on the grid already, else None.

    On the grid means same CRS, same pixel size, no rotation and an integer
    pixel offset: then a window of the grid is a window of the file, and the
    read needs no warping at all (the common case: a scene in the city's UTM
    zone at the model's GSD).
    """
    if src.crs is None or CRS.from_user_input(src.crs) != CRS.from_user_input(grid.crs):
        return None
    st, gt = src.transform, grid.transform
    if st.b or st.d or not (math.isclose(st.a, gt.a, rel_tol=1e-9) and math.isclose(st.e, gt.e, rel_tol=1e-9)):
        return None
    col, row = (gt.c - st.c) / st.a, (gt.f - st.f) / st.e
    if not (math.isclose(col, round(col), abs_tol=1e-6) and math.isclose(row, round(row), abs_tol=1e-6)):
        return None
    return round(col), round(row)


def _read_on_grid(
    href: Path, bands: list[int], grid: CityGrid, bounds: tuple[float, float, float, float], resampling: Resampling
) -> tuple[np.ndarray, np.ndarray, Affine]:
    """Read ``bands`` of ``href`` over ``bounds`` on ``grid``; also the validity mask.

    A file already on the grid is read directly (only the blocks the window
    touches are decoded); any other goes through a ``WarpedVRT``.
    """
    src = _open(href)
    window = from_bounds(*bounds, transform=grid.transform).round_offsets().round_lengths()
    try:
        with src:
            offset = _aligned_offset(src, grid)
            if offset is not None:
                return _read_aligned(src, bands, window, offset, grid)
            with WarpedVRT(
                src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                resampling=resampling,
            ) as vrt:
                data = vrt.read(bands, window=window)
                mask = vrt.dataset_mask(window=window) > 0
                return data, mask, vrt.window_transform(window)
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(
            href, f"cannot read the pixels of {tuple(round(v) for v in bounds)} ({exc})",
            hint="the file may be truncated or corrupt: copy or download it again",
        ) from None


def _read_aligned(
    src: rasterio.DatasetReader, bands: list[int], window: Window, offset: tuple[int, int], grid: CityGrid
) -> tuple[np.ndarray, np.ndarray, Affine]:
    """The grid ``window`` of a file on the grid: read what overlaps the file, zeros elsewhere."""
    col0, row0 = int(window.col_off) + offset[0], int(window.row_off) + offset[1]
    h, w = int(window.height), int(window.width)
    data = np.zeros((len(bands), h, w), dtype=src.dtypes[bands[0] - 1])
    mask = np.zeros((h, w), dtype=bool)
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + h, src.height), min(col0 + w, src.width)
    if r1 > r0 and c1 > c0:
        inner = Window(c0, r0, c1 - c0, r1 - r0)
        dst = (slice(r0 - row0, r1 - row0), slice(c0 - col0, c1 - col0))
        data[(slice(None), *dst)] = src.read(bands, window=inner)
        mask[dst] = src.dataset_mask(window=inner) > 0
    return data, mask, grid.transform * Affine.translation(int(window.col_off), int(window.row_off))


def _read_classes_nearest(href: Path, band: int, grid: CityGrid) -> np.ndarray:
    """A class band (e.g. Sentinel-2 SCL at 20 m) sampled at ``grid``'s pixel centres, nearest neighbour.

    When the file is north-up in the grid's CRS, only the coarse pixels under
    the grid are read and each fine pixel picks its coarse pixel by index,
    which is what a nearest warp does at a fraction of its cost; otherwise
    the file is warped. Outside the file the class is 0 (no data).
    """
    src = _open(href)
    with src:
        st = src.transform
        same_crs = src.crs is not None and CRS.from_user_input(src.crs) == CRS.from_user_input(grid.crs)
        if not same_crs or st.b or st.d:
            data, _, _ = _read_on_grid(href, [band], grid, grid.bounds, Resampling.nearest)
            return data[0]
        gt = grid.transform
        cols = np.floor((gt.c + (np.arange(grid.width) + 0.5) * gt.a - st.c) / st.a).astype(np.int64)
        rows = np.floor((gt.f + (np.arange(grid.height) + 0.5) * gt.e - st.f) / st.e).astype(np.int64)
        inside_c = (cols >= 0) & (cols < src.width)
        inside_r = (rows >= 0) & (rows < src.height)
        out = np.zeros((grid.height, grid.width), dtype=src.dtypes[band - 1])
        if not (inside_c.any() and inside_r.any()):
            return out
        c0, c1 = cols[inside_c].min(), cols[inside_c].max() + 1
        r0, r1 = rows[inside_r].min(), rows[inside_r].max() + 1
        coarse = src.read(band, window=Window(c0, r0, c1 - c0, r1 - r0))
        picked = coarse[np.ix_(rows[inside_r] - r0, cols[inside_c] - c0)]
        out[np.ix_(inside_r, inside_c)] = picked
        return out


def _class_band(scene: Scene, cloud_scene: Scene | None) -> tuple[Scene, str] | None:
    """Which scene's class band masks cloud: the ``cloud_scene``'s, else the scene's own, else None.

    A class band is Sentinel-2 ``scl`` or Landsat ``qa_pixel``; the cloud
    scene comes first because it was given for exactly this purpose.
    """
    for candidate in (cloud_scene, scene):
        if candidate is None:
            continue
        for name in CLASS_BANDS:
            if name in candidate.bands:
                return candidate, name
    return None


def prepare_tile(
    scene: Scene,
    grid: CityGrid,
    tile: TileSpec,
    *,
    halo_m: float,
    chip_px: int | None,
    overlap_px: int,
    cloud_scene: Scene | None = None,
) -> PreparedTile:
    """Everything a model needs for one tile: pixels on ``grid``, masks and chips.

    ``chip_px`` None gives one chip over the whole window (see :func:`cut_chips`).

    ``grid`` fixes CRS and GSD (the model's); ``cloud_scene`` is an optional
    Sentinel-2 scene of the same instant whose SCL masks cloud. Without one,
    the scene's own class band (``scl`` or ``qa_pixel``) masks cloud, and
    without that the bright-cloud rule does.
    """
    bounds = tile.window_bounds(halo_m, grid.bounds)
    coarsening = grid.gsd_m > scene.gsd_m * 1.01
    resampling = Resampling.average if coarsening else Resampling.bilinear
    band_idx = [scene.band_index(b) + 1 for b in REFLECTANCE_BANDS]
    raw, in_image, transform = _read_on_grid(Path(scene.href), band_idx, grid, bounds, resampling)
    if not np.issubdtype(raw.dtype, np.integer):
        raw = np.maximum(raw.astype(np.float32), 0.0)  # a float archive: keep it, drop negatives
    in_image &= raw.max(axis=0) > 0

    cloud = np.zeros_like(in_image)
    class_source = _class_band(scene, cloud_scene)
    if class_source is not None:
        source, band_name = class_source
        tile_grid = CityGrid(grid.crs, transform.c, transform.f, grid.gsd_m, in_image.shape[1], in_image.shape[0])
        classes = _read_classes_nearest(Path(source.href), source.band_index(band_name) + 1, tile_grid)
        cloud = class_band_unusable(band_name, classes) & in_image
    else:
        reflectance = to_reflectance(raw, scene.scale)
        cloud = bright_cloud_mask(reflectance, grid.gsd_m) & in_image
        del reflectance
    valid = in_image & ~cloud
    raw[:, ~valid] = 0

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
        pixels=raw,
        valid=valid,
        in_image=in_image,
        core_px=core_px,
        dn_scale=float(scene.scale),
    )
    prepared.chips = cut_chips(prepared, chip_px, overlap_px)
    return prepared


def crop_tile(
    prepared: PreparedTile, grid: CityGrid, tile: TileSpec, *, halo_m: float, chip_px: int | None, overlap_px: int
) -> PreparedTile | None:
    """The same tile with a smaller halo, cut from ``prepared`` instead of read again.

    For a second model on the same grid (the vehicle detector after the
    building one): the pixels, masks and core are exactly what
    :func:`prepare_tile` would return, without decoding the file twice.
    None when the smaller window does not lie inside ``prepared`` (pixel
    rounding at the grid's edge): then read it.
    """
    window = from_bounds(*tile.window_bounds(halo_m, grid.bounds), transform=grid.transform)
    window = window.round_offsets().round_lengths()  # exactly as prepare_tile rounds it
    col_off, row_off = (int(round(v)) for v in ~grid.transform * (prepared.transform.c, prepared.transform.f))
    r0, c0 = int(window.row_off) - row_off, int(window.col_off) - col_off
    r1, c1 = r0 + int(window.height), c0 + int(window.width)
    rows, cols = prepared.valid.shape
    if not (0 <= r0 < r1 <= rows and 0 <= c0 < c1 <= cols):
        return None
    k0, kc0, k1, kc1 = prepared.core_px
    cropped = PreparedTile(
        tile_id=prepared.tile_id,
        scene_id=prepared.scene_id,
        gsd_m=prepared.gsd_m,
        transform=prepared.transform * Affine.translation(c0, r0),
        pixels=prepared.pixels[:, r0:r1, c0:c1],
        valid=prepared.valid[r0:r1, c0:c1],
        in_image=prepared.in_image[r0:r1, c0:c1],
        core_px=(k0 - r0, kc0 - c0, k1 - r0, kc1 - c0),
        dn_scale=prepared.dn_scale,
    )
    cropped.chips = cut_chips(cropped, chip_px, overlap_px)
    return cropped


WINDOW_ALIGN_PX = 32
"""A whole window's corner is cropped only to multiples of this: a network that folds or strides its input
(the building model maps 2x2 pixels to one) then keeps the same output grid as the tile."""


def whole_window(valid: np.ndarray) -> ChipWindow | None:
    """One window over the bounding box of ``valid`` (which it owns whole); None when nothing is valid.

    A network that sees the tile's whole window in one pass computes each
    pixel once: overlapping chips compute their overlaps twice or more (the
    building card's 768 px chips overlapping by 192 px fed it 3.5 times the
    tile's area, halo included), and have seams to blend. Cropping to the
    valid pixels leaves out a city edge's or a scene edge's empty part.
    """
    rows = np.flatnonzero(valid.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(valid.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    r0, c0 = r0 - r0 % WINDOW_ALIGN_PX, c0 - c0 % WINDOW_ALIGN_PX
    return ChipWindow(r0, c0, r1 - r0, c1 - c0, (r0, c0, r1, c1))


def cut_chips(tile: PreparedTile, chip_px: int | None, overlap_px: int) -> list[Chip]:
    """Overlapping chips over the tile window; empty (all-invalid) chips are skipped.

    ``chip_px`` None cuts one chip, the :func:`whole_window` (no padding: the
    model pads it to the size its network needs).
    """
    rows, cols = tile.valid.shape
    chips = []
    if chip_px is None:
        window = whole_window(tile.valid)
        windows = [] if window is None else [window]
    else:
        windows = plan_windows(rows, cols, chip_px, overlap_px)
    for w in windows:
        valid = tile.valid[w.row : w.row + w.height, w.col : w.col + w.width]
        if not valid.any():
            continue
        pixels = tile.pixels[:, w.row : w.row + w.height, w.col : w.col + w.width]
        if chip_px is not None and (w.height < chip_px or w.width < chip_px):  # pad edge chips to the model's size
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
                dn_scale=tile.dn_scale,
            )
        )
    return chips
