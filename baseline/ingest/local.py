"""Local files: Cloud-Optimized GeoTIFFs described by STAC Item sidecars.

A folder holds ``<name>.tif`` + ``<name>.json`` pairs (see docs/contracts.md).
Pixels are read lazily, block by block, into a Dask-backed xarray array, so a
scene larger than memory streams through preprocess.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.windows import Window

from baseline.core.hashing import sha256_file
from baseline.core.scene import SENSOR_S2, SENSOR_VHR, Scene
from baseline.errors import InputFileError, SceneError

BLOCK = 1024
# Sentinel-2 band ids to the common names every stage uses
S2_COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "SCL": "scl"}


def _read_block(path: str, bands: tuple[int, ...], row: int, col: int, h: int, w: int) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(list(bands), window=Window(col, row, w, h))


def _read_mask_block(path: str, row: int, col: int, h: int, w: int) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.dataset_mask(window=Window(col, row, w, h)) > 0


def _lazy(path: Path, count: int, rows: int, cols: int, dtype: str, *, mask: bool) -> da.Array:
    """A Dask array of the file (or its valid mask) in BLOCK x BLOCK pieces."""
    import dask

    row_blocks = []
    for r in range(0, rows, BLOCK):
        h = min(BLOCK, rows - r)
        col_blocks = []
        for c in range(0, cols, BLOCK):
            w = min(BLOCK, cols - c)
            if mask:
                piece = dask.delayed(_read_mask_block, pure=True)(str(path), r, c, h, w)
                col_blocks.append(da.from_delayed(piece, (h, w), dtype=bool))
            else:
                piece = dask.delayed(_read_block, pure=True)(str(path), tuple(range(1, count + 1)), r, c, h, w)
                col_blocks.append(da.from_delayed(piece, (count, h, w), dtype=dtype))
        row_blocks.append(col_blocks)
    return da.block(row_blocks)


def _parse_time(item: dict, path: Path) -> datetime:
    value = item.get("properties", {}).get("datetime")
    if not value:
        raise SceneError(f"{path}: STAC Item has no properties.datetime", hint="add the acquisition instant in UTC")
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise SceneError(f"{path}: datetime {value!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise SceneError(f"{path}: datetime {value!r} has no time zone", hint="write it in UTC with a trailing Z")
    return when


def open_scene(item_path: str | Path) -> Scene:
    """Open one STAC Item sidecar and the GeoTIFF it points to as a lazy Scene."""
    item_path = Path(item_path)
    if not item_path.is_file():
        raise InputFileError(item_path, "STAC Item not found")
    try:
        item = json.loads(item_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(item_path, f"not valid JSON ({exc.msg}, line {exc.lineno})") from None
    props = item.get("properties", {})
    asset = item.get("assets", {}).get("image")
    if not asset or "href" not in asset:
        raise SceneError(f"{item_path}: STAC Item has no 'image' asset with an href")
    href = (item_path.parent / asset["href"]).resolve()
    if not href.is_file():
        raise InputFileError(href, f"image named by {item_path.name} is missing")
    try:
        with rasterio.open(href) as src:
            crs, transform = src.crs, src.transform
            rows, cols, count, dtype = src.height, src.width, src.count, src.dtypes[0]
            descriptions = src.descriptions
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(href, f"not a readable GeoTIFF ({exc})") from None
    if crs is None:
        raise SceneError(f"{href}: the image has no CRS", hint="write the projection into the GeoTIFF")
    eo = asset.get("eo:bands") or []
    names = [b.get("name") for b in eo] if eo else [d or f"band{i + 1}" for i, d in enumerate(descriptions)]
    if len(names) != count:
        raise SceneError(f"{item_path}: eo:bands lists {len(names)} bands but {href.name} has {count}")
    sensor = props.get("citybaseline:sensor", SENSOR_VHR)
    bands = tuple(S2_COMMON.get(n, n) for n in names) if sensor == SENSOR_S2 else tuple(names)
    offsets_raw = props.get("citybaseline:band_time_offsets_s", {})
    offsets = {S2_COMMON.get(k, k): float(v) for k, v in offsets_raw.items()}
    for key in ("view:sun_elevation", "view:sun_azimuth"):
        if key not in props:
            raise SceneError(f"{item_path}: properties has no {key!r}", hint="heights from shadows need the sun position")

    ys = transform.f + transform.e * (np.arange(rows) + 0.5)
    xs = transform.c + transform.a * (np.arange(cols) + 0.5)
    data = xr.DataArray(
        _lazy(href, count, rows, cols, dtype, mask=False),
        dims=("band", "y", "x"),
        coords={"band": list(bands), "y": ys, "x": xs},
        name=item.get("id", href.stem),
    )
    valid = xr.DataArray(_lazy(href, count, rows, cols, dtype, mask=True), dims=("y", "x"), coords={"y": ys, "x": xs})
    return Scene(
        scene_id=str(item.get("id", href.stem)),
        sensor=sensor,
        data=data,
        valid=valid,
        crs=CRS.from_user_input(crs.to_wkt()),
        transform=Affine(*transform[:6]),
        gsd_m=float(props.get("gsd", abs(transform.a))),
        bands=bands,
        acquired_at=_parse_time(item, item_path),
        sun_elevation_deg=float(props["view:sun_elevation"]),
        sun_azimuth_deg=float(props["view:sun_azimuth"]),
        off_nadir_deg=float(props.get("view:off_nadir", 0.0)),
        band_time_offsets_s=offsets,
        scale=float(props.get("citybaseline:scale", 1e-4)),
        href=href,
        checksum=sha256_file(href),
        provenance=dict(props.get("citybaseline:provenance") or {}),
    )


class LocalFilesSource:
    """Scenes from a folder of COGs with STAC Item sidecars."""

    name = "local"

    def __init__(self, folder: str | Path, *, sensors: tuple[str, ...] = (SENSOR_VHR, SENSOR_S2)) -> None:
        self.folder = Path(folder)
        self.sensors = sensors

    def scenes(self) -> list[Scene]:
        """Every Item in the folder whose sensor is wanted, sorted by id."""
        if not self.folder.is_dir():
            raise InputFileError(self.folder, "scene folder not found", hint="render one with `baseline synth`")
        found = []
        for item_path in sorted(self.folder.glob("*.json")):
            try:
                item = json.loads(item_path.read_text())
            except json.JSONDecodeError:
                continue  # not every JSON beside the imagery is an Item
            if item.get("type") != "Feature" or "assets" not in item:
                continue
            if item.get("properties", {}).get("citybaseline:sensor", SENSOR_VHR) in self.sensors:
                found.append(open_scene(item_path))
        if not found:
            raise InputFileError(
                self.folder, "no STAC Item sidecars (*.json with an 'image' asset) found",
                hint="each image needs a <name>.json STAC Item beside it",
            )
        return sorted(found, key=lambda s: s.scene_id)
