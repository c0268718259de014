"""Labelled scenes for training and evaluation, read from disk.

Two layouts are accepted (both in one CRS per folder):

1. A scene folder written by ``baseline synth`` (docs/contracts.md): ``vhr.tif``,
   ``vhr.json`` (sun angles, band time offsets) and ``truth/buildings.parquet``,
   ``truth/vehicles.parquet``.
2. Any labelled raster: a folder with exactly one image GeoTIFF (bands blue,
   green, red, nir; uint16 reflectance x 10000, or float reflectance 0..1) and
   label files beside it: ``buildings.geojson|.gpkg|.parquet`` (polygons,
   optional ``height_m``) and/or ``vehicles.geojson|.gpkg|.parquet`` (polygons,
   optional ``class`` car|large, ``heading_deg``, ``speed_kmh``). Sun angles and
   band offsets come from an optional ``meta.json``
   (``{"sun_elevation_deg", "sun_azimuth_deg", "band_time_offsets_s"}``) or the
   GeoTIFF tags ``SUN_ELEVATION``, ``SUN_AZIMUTH``, ``BAND_TIME_OFFSETS_S``.
   Without sun angles there is no shadow target; without heights no height target.

Scenes keep their own pixel size here; building training and scoring bring
them to the model's GSD (:func:`baseline.train.targets.scene_on_model_grid`),
and a vehicle model is trained at the one pixel size its scenes share.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS

from baseline.core.geo import require_same_crs
from baseline.core.geoparquet import read_vector
from baseline.detect.boxes import box_from_polygon
from baseline.errors import InputFileError

LABEL_SUFFIXES = (".parquet", ".geoparquet", ".geojson", ".json", ".gpkg")


@dataclass
class LabelledScene:
    """An image with its labels, in memory.

    ``image`` is (4, H, W) uint16 reflectance x 10000 (0 = nodata) in band order
    blue, green, red, nir; ``valid`` (H, W) bool. ``buildings`` has ``geometry``
    and ``height_m`` (NaN when unknown); ``vehicles`` has ``geometry``, ``class``,
    ``length_m``, ``width_m``, ``axis_deg`` (heading when known), ``speed_kmh``
    and ``moving``.
    """

    scene_id: str
    path: Path
    image: np.ndarray
    valid: np.ndarray
    transform: Affine
    crs: CRS
    gsd_m: float
    sun_elevation_deg: float | None
    sun_azimuth_deg: float | None
    band_time_offsets_s: dict[str, float] = field(default_factory=dict)
    buildings: gpd.GeoDataFrame | None = None
    vehicles: gpd.GeoDataFrame | None = None

    def reflectance(self, window: tuple[slice, slice] | None = None) -> np.ndarray:
        """Float32 reflectance (4, h, w) of ``window`` (default: all)."""
        data = self.image if window is None else self.image[:, window[0], window[1]]
        return data.astype(np.float32) * np.float32(1e-4)


def _read_image(path: Path) -> tuple[np.ndarray, np.ndarray, Affine, CRS, dict[str, str]]:
    try:
        with rasterio.open(path) as src:
            if src.count < 4:
                raise InputFileError(path, f"{src.count} bands, expected blue, green, red, nir")
            data = src.read([1, 2, 3, 4])
            valid = src.dataset_mask() > 0
            tags = src.tags()
            if src.crs is None:
                raise InputFileError(path, "image has no CRS")
            transform, crs = src.transform, CRS.from_user_input(src.crs)
    except rasterio.errors.RasterioIOError as exc:
        raise InputFileError(path, f"cannot read image ({exc})") from None
    if np.issubdtype(data.dtype, np.floating):
        data = np.clip(np.nan_to_num(data) * 10000.0, 0, 65535).astype(np.uint16)
    else:
        data = data.astype(np.uint16)
    valid &= data.max(axis=0) > 0
    return data, valid, transform, crs, tags


def _sun_from_tags(tags: dict[str, str]) -> tuple[float | None, float | None, dict[str, float]]:
    elev = float(tags["SUN_ELEVATION"]) if "SUN_ELEVATION" in tags else None
    az = float(tags["SUN_AZIMUTH"]) if "SUN_AZIMUTH" in tags else None
    offsets = json.loads(tags["BAND_TIME_OFFSETS_S"]) if "BAND_TIME_OFFSETS_S" in tags else {}
    return elev, az, {k: float(v) for k, v in offsets.items()}


def _vehicle_columns(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Fill the vehicle columns training needs from whatever the labels carry."""
    frame = frame.copy()
    boxes = [box_from_polygon(g) for g in frame.geometry]
    if "class" not in frame:
        frame["class"] = "car"
    frame["class"] = frame["class"].where(frame["class"].isin(["car", "large"]), "car")
    if "length_m" not in frame:
        frame["length_m"] = [b.length for b in boxes]
    if "width_m" not in frame:
        frame["width_m"] = [b.width for b in boxes]
    frame["axis_deg"] = frame["heading_deg"].astype(float) if "heading_deg" in frame else [b.axis_deg for b in boxes]
    frame["speed_kmh"] = frame["speed_kmh"].fillna(0.0).astype(float) if "speed_kmh" in frame else 0.0
    frame["moving"] = frame["moving"].fillna(False).astype(bool) if "moving" in frame else frame["speed_kmh"] > 5.0
    return frame


def _building_columns(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])].copy()
    frame["height_m"] = frame["height_m"].astype(float) if "height_m" in frame else np.nan
    return frame.reset_index(drop=True)


def _find_label(folder: Path, stem: str) -> Path | None:
    for suffix in LABEL_SUFFIXES:
        for candidate in (folder / "truth" / f"{stem}{suffix}", folder / f"{stem}{suffix}"):
            if candidate.exists():
                return candidate
    return None


def load_labelled_scene(folder: str | Path) -> LabelledScene:
    """Read a scene folder or a labelled-raster folder (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(folder, "not a folder", hint="pass a scene folder written by `baseline synth`")
    image_path = folder / "vhr.tif"
    if not image_path.exists():
        tifs = sorted(p for p in folder.glob("*.tif*") if p.suffix.lower() in (".tif", ".tiff"))
        if len(tifs) != 1:
            raise InputFileError(
                folder, f"expected vhr.tif or exactly one image GeoTIFF, found {len(tifs)}",
                hint="see `baseline train --help` for the folder layout",
            )
        image_path = tifs[0]
    data, valid, transform, crs, tags = _read_image(image_path)
    elev, az, offsets = _sun_from_tags(tags)
    scene_id = folder.name
    item_path = image_path.with_suffix(".json")
    if item_path.exists():
        props = json.loads(item_path.read_text()).get("properties", {})
        scene_id = json.loads(item_path.read_text()).get("id", scene_id)
        elev = props.get("view:sun_elevation", elev)
        az = props.get("view:sun_azimuth", az)
        offsets = props.get("citybaseline:band_time_offsets_s", offsets) or offsets
    meta = folder / "meta.json"
    if meta.exists():
        m = json.loads(meta.read_text())
        elev = m.get("sun_elevation_deg", elev)
        az = m.get("sun_azimuth_deg", az)
        offsets = m.get("band_time_offsets_s", offsets)
    scene = LabelledScene(
        scene_id=scene_id, path=folder, image=data, valid=valid, transform=transform, crs=crs,
        gsd_m=float(abs(transform.a)), sun_elevation_deg=None if elev is None else float(elev),
        sun_azimuth_deg=None if az is None else float(az), band_time_offsets_s=dict(offsets or {}),
    )
    b_path, v_path = _find_label(folder, "buildings"), _find_label(folder, "vehicles")
    if b_path is None and v_path is None:
        raise InputFileError(folder, "no labels (buildings.* or vehicles.*, or truth/*.parquet)")
    if b_path is not None:
        b = read_vector(b_path)
        require_same_crs(f"{b_path} vs {image_path}", b.crs, crs)
        scene.buildings = _building_columns(b)
    if v_path is not None:
        v = read_vector(v_path)
        require_same_crs(f"{v_path} vs {image_path}", v.crs, crs)
        scene.vehicles = _vehicle_columns(v)
    return scene


def crop_scene(scene: LabelledScene, row0: int, col0: int, height: int, width: int) -> LabelledScene:
    """A window of ``scene`` with the labels whose centroid lies inside it (for quick checks)."""
    from affine import Affine as _Affine

    rows = slice(row0, row0 + height)
    cols = slice(col0, col0 + width)
    transform = scene.transform @ _Affine.translation(col0, row0)
    x0, y0 = transform @ (0, 0)
    x1, y1 = transform @ (width, height)
    xmin, xmax, ymin, ymax = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)

    def inside(frame: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
        if frame is None:
            return None
        c = frame.geometry.centroid
        keep = (c.x >= xmin) & (c.x < xmax) & (c.y > ymin) & (c.y <= ymax)
        return frame[keep].reset_index(drop=True)

    return LabelledScene(
        scene_id=f"{scene.scene_id}-r{row0}c{col0}", path=scene.path, image=scene.image[:, rows, cols].copy(),
        valid=scene.valid[rows, cols].copy(), transform=transform, crs=scene.crs, gsd_m=scene.gsd_m,
        sun_elevation_deg=scene.sun_elevation_deg, sun_azimuth_deg=scene.sun_azimuth_deg,
        band_time_offsets_s=dict(scene.band_time_offsets_s), buildings=inside(scene.buildings),
        vehicles=inside(scene.vehicles),
    )
