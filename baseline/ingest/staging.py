"""Staging: what a remote source fetched, written once as a local scene the pipeline reads.

Remote sources (STAC APIs, Sentinel Hub) hand over pixels on the city's UTM
grid. They are written here, block by block so memory stays flat, as a tiled
GeoTIFF with an internal validity mask and a STAC Item sidecar, in the same
form as every local scene (docs/contracts.md). Reflectance is stored as
uint16 counts of 1e-4, whatever the product's own scale and offset were, so
every later stage sees one convention.

A staged scene records a ``stage key`` (a digest of what was asked for and
which acquisitions answered). A later run asking the same finds the scene
and reads nothing remote again. Files appear only when complete: the image
is renamed into place, then its sidecar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.errors import RasterioError
from rasterio.windows import Window

from baseline import __version__
from baseline.core.atomic import atomic_path, write_text_atomic
from baseline.core.scene import Scene
from baseline.errors import BaselineError, OutputError

STAGE_SCALE = 1e-4  # reflectance of one stored count
BLOCK = 512
ROWS_PER_WRITE = 2048


@dataclass(frozen=True)
class StagedMetadata:
    """What a staged scene's sidecar says about it.

    ``bands`` names every band in file order: reflectance bands by common
    name (blue, green, red, nir), then any class band (``scl``, ``qa_pixel``).
    ``provenance`` says where the pixels came from (endpoint, collection,
    item ids, URLs without signatures, how the acquisition was chosen); it
    goes into the run's manifest, so it must never hold a secret.
    """

    scene_id: str
    sensor: str
    bands: tuple[str, ...]
    acquired_at: datetime
    sun_elevation_deg: float
    sun_azimuth_deg: float
    stage_key: str
    off_nadir_deg: float = 0.0
    band_time_offsets_s: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, object] = field(default_factory=dict)


def safe_name(scene_id: str) -> str:
    """``scene_id`` as a file name (letters, digits, ``.-_`` only)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", scene_id).strip("._") or "scene"


def reflectance_to_counts(reflectance: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Float reflectance (NaN where unknown) as uint16 counts of :data:`STAGE_SCALE`.

    0 is kept for "no data": a valid pixel whose reflectance rounds to 0 or
    below is stored as 1 (1e-4), so validity never depends on darkness.
    """
    counts = np.rint(np.nan_to_num(reflectance, nan=0.0) / STAGE_SCALE)
    counts = np.clip(counts, 1, np.iinfo(np.uint16).max).astype(np.uint16)
    unknown = np.isnan(reflectance)
    if valid is not None:
        unknown |= ~valid[None] if reflectance.ndim == 3 else ~valid
    counts[unknown] = 0
    return counts


def find_staged(folder: Path, scene_id: str, stage_key: str) -> Scene | None:
    """The scene staged earlier for exactly this request, or None."""
    from baseline.ingest.local import open_scene

    sidecar = Path(folder) / f"{safe_name(scene_id)}.json"
    try:
        item = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if item.get("properties", {}).get("citybaseline:stage_key") != stage_key:
        return None
    if not (sidecar.parent / item.get("assets", {}).get("image", {}).get("href", "")).is_file():
        return None
    return open_scene(sidecar)


def stage_scene(
    folder: Path,
    meta: StagedMetadata,
    read_rows: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    *,
    crs: CRS,
    transform: Affine,
    shape: tuple[int, int],
    dtype: str = "uint16",
    on_rows: Callable[[int], None] | None = None,
) -> Scene:
    """Write a scene from ``read_rows(row0, row1) -> (data (band, rows, cols), valid (rows, cols))``.

    ``read_rows`` is asked for consecutive strips of at most
    :data:`ROWS_PER_WRITE` rows, so a city larger than memory streams through.
    ``on_rows(n)`` reports progress. Returns the staged scene, opened like any
    local scene.

    Raises:
        OutputError: the folder cannot be written; nothing partial is left.
    """
    from baseline.ingest.local import open_scene

    folder = Path(folder)
    name = safe_name(meta.scene_id)
    rows, cols = shape
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": len(meta.bands), "dtype": dtype,
        "crs": crs, "transform": transform, "nodata": None, "tiled": True, "blockxsize": BLOCK,
        "blockysize": BLOCK, "compress": "DEFLATE", "predictor": 2, "BIGTIFF": "IF_SAFER",
    }
    try:
        with (
            atomic_path(folder / f"{name}.tif") as tmp,
            rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
            rasterio.open(tmp, "w", **profile) as dst,
        ):
            for i, band in enumerate(meta.bands, start=1):
                dst.set_band_description(i, band)
            for r0 in range(0, rows, ROWS_PER_WRITE):
                r1 = min(rows, r0 + ROWS_PER_WRITE)
                data, valid = read_rows(r0, r1)
                window = Window(0, r0, cols, r1 - r0)
                dst.write(np.asarray(data, dtype=dtype), window=window)
                dst.write_mask(np.asarray(valid, dtype=np.uint8) * 255, window=window)
                if on_rows is not None:
                    on_rows(r1 - r0)
        write_text_atomic(folder / f"{name}.json", json.dumps(_item(meta, name, crs, transform, shape), indent=2))
    except (OSError, RasterioError) as exc:
        (folder / f"{name}.tif").unlink(missing_ok=True)
        if isinstance(exc, BaselineError):
            raise  # a source's own typed failure (SourceError is an OSError too)
        raise OutputError(f"cannot stage scene {meta.scene_id!r} in {folder}: {exc}",
                          hint="check free disk space and permissions of scene.path") from exc
    return open_scene(folder / f"{name}.json")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _item(meta: StagedMetadata, name: str, crs: CRS, transform: Affine, shape: tuple[int, int]) -> dict:
    """The STAC Item sidecar of a staged scene (the fields :func:`open_scene` reads, and provenance)."""
    rows, cols = shape
    xs = [transform.c, transform.c + transform.a * cols]
    ys = [transform.f, transform.f + transform.e * rows]
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    west, south, east, north = to_lonlat.transform_bounds(min(xs), min(ys), max(xs), max(ys), densify_pts=21)
    epsg = CRS.from_user_input(crs).to_epsg()
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": meta.scene_id,
        "bbox": [west, south, east, north],
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        },
        "properties": {
            "datetime": _iso(meta.acquired_at),
            "gsd": abs(transform.a),
            "proj:code": f"EPSG:{epsg}" if epsg else None,
            "proj:shape": [rows, cols],
            "proj:transform": list(transform)[:6],
            "view:sun_elevation": round(meta.sun_elevation_deg, 4),
            "view:sun_azimuth": round(meta.sun_azimuth_deg, 4),
            "view:off_nadir": round(meta.off_nadir_deg, 4),
            "citybaseline:sensor": meta.sensor,
            "citybaseline:band_time_offsets_s": dict(meta.band_time_offsets_s),
            "citybaseline:scale": STAGE_SCALE,
            "citybaseline:stage_key": meta.stage_key,
            "citybaseline:provenance": meta.provenance,
            "citybaseline:staged_by": f"citybaseline {__version__}",
        },
        "links": [],
        "assets": {
            "image": {
                "href": f"{name}.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
                "eo:bands": [{"name": b} for b in meta.bands],
            }
        },
    }
