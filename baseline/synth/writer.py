"""Writing a rendered scene folder: COGs with masks and tags, STAC sidecars, truth, preview.

Layout and fields follow docs/contracts.md. Everything is written into a hidden
temporary folder beside the target and moved into place only when complete, so
a failed or interrupted render leaves no partial files behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pystac
import rasterio
import rasterio.shutil
import shapely
from PIL import Image
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile

from baseline import __version__
from baseline.core.atomic import atomic_path, write_text_atomic
from baseline.core.geoparquet import write_geoparquet
from baseline.errors import OutputError
from baseline.synth.grid import Grid
from baseline.synth.sensors import SCL_BAND, SENTINEL2, VHR, SensorSpec

if TYPE_CHECKING:
    from baseline.synth.render import RenderResult

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
PREVIEW_MAX_PX = 2000
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
]


def write_scene(result: RenderResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``result`` as a scene folder at ``out_dir``; returns the written files by name.

    Raises:
        OutputError: the folder cannot be written; nothing partial is left.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} exists and is not a folder", hint="choose another --out")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.parent.glob(f".tmp-{out_dir.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    except OSError as exc:
        raise OutputError(f"cannot write under {out_dir.parent}: {exc.strerror}") from exc
    try:
        names = _write_all(result, tmp)
        _move_into_place(tmp, out_dir)
    except (OSError, RasterioError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the scene to {out_dir}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {name: out_dir / rel for name, rel in names.items()}


def _write_all(result: RenderResult, folder: Path) -> dict[str, Path]:
    names: dict[str, Path] = {}
    vhr_tags = _tags(result, VHR)
    write_cog(folder / "vhr.tif", result.vhr, result.vhr_grid, result.valid, VHR.bands, vhr_tags)
    _write_stac(folder / "vhr.json", result, VHR, result.vhr_grid, "vhr.tif")
    names.update({"vhr.tif": Path("vhr.tif"), "vhr.json": Path("vhr.json")})
    if result.s2 is not None and result.s2_grid is not None and result.s2_valid is not None:
        s2_tags = _tags(result, SENTINEL2)
        write_cog(folder / "s2.tif", result.s2, result.s2_grid, result.s2_valid, (*SENTINEL2.bands, SCL_BAND),
                  s2_tags, resampling="nearest")
        _write_stac(folder / "s2.json", result, SENTINEL2, result.s2_grid, "s2.tif")
        names.update({"s2.tif": Path("s2.tif"), "s2.json": Path("s2.json")})
    for table, frame in (("buildings", result.buildings), ("vehicles", result.vehicles), ("roads", result.roads)):
        rel = Path("truth") / f"{table}.parquet"
        write_geoparquet(frame, folder / rel)
        names[f"truth/{table}.parquet"] = rel
    write_preview(folder / "preview.png", result.vhr, result.valid)
    names["preview.png"] = Path("preview.png")
    write_text_atomic(folder / "render.json", json.dumps(render_record(result), indent=2) + "\n")
    names["render.json"] = Path("render.json")
    return names


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished folder to ``out_dir``, or move its files into an existing one.

    Temporary files are created private (0600/0700); the scene gets the usual
    permissions of new files under the process umask.
    """
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path in [tmp, *tmp.rglob("*")]:
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
        if out_dir.exists() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        if not out_dir.exists():
            os.replace(tmp, out_dir)
            return
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            target = out_dir / path.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        raise OutputError(f"cannot move the scene into {out_dir}: {exc.strerror}") from exc


def write_cog(path: Path, data: np.ndarray, grid: Grid, valid: np.ndarray, band_names: tuple[str, ...],
              tags: dict[str, str], resampling: str = "average") -> None:
    """Write ``data`` (bands, rows, cols) as a Cloud-Optimized GeoTIFF with an internal mask, atomically."""
    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": data.shape[0],
        "dtype": data.dtype.name, "crs": grid.crs, "transform": grid.transform, "nodata": None,
        "tiled": True, "blockxsize": 512, "blockysize": 512,
    }
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), MemoryFile() as memfile:
        with memfile.open(**profile) as ds:
            ds.write(data)
            ds.write_mask(valid.astype(np.uint8) * 255)
            ds.update_tags(**tags)
            for i, name in enumerate(band_names, start=1):
                ds.set_band_description(i, name)
        with memfile.open() as src, atomic_path(path) as tmp:
            rasterio.shutil.copy(
                src, tmp, driver="COG", compress="DEFLATE", predictor=2, level=6, blocksize=512,
                overview_resampling=resampling, num_threads=2,
            )


def _tags(result: RenderResult, sensor: SensorSpec) -> dict[str, str]:
    return {
        "ACQUISITION_TIME": _iso(result.acquired_at),
        "SUN_ELEVATION": f"{result.sun_elevation_deg:.4f}",
        "SUN_AZIMUTH": f"{result.sun_azimuth_deg:.4f}",
        "BAND_TIME_OFFSETS_S": json.dumps(sensor.time_offsets_s),
        "BAND_ORDER": json.dumps(list(sensor.bands) + ([SCL_BAND] if sensor is SENTINEL2 else [])),
        "SENSOR": sensor.name,
        "SCALE": "0.0001",
        "SCENE_ID": result.scene_id(sensor),
        "GENERATOR": f"citybaseline {__version__} baseline.synth",
    }


def stac_item(result: RenderResult, sensor: SensorSpec, grid: Grid, href: str) -> pystac.Item:
    """The STAC Item (sidecar) of one image of the scene, loaded through pystac."""
    lonlat = result.footprint_lonlat()
    eo_bands = [{"name": b, "common_name": c} for b, c in zip(sensor.bands, sensor.common_names, strict=True)]
    if sensor is SENTINEL2:
        eo_bands.append({"name": SCL_BAND, "description": "scene classification"})
    epsg = grid.crs.to_epsg()
    item = {
        "type": "Feature",
        "stac_version": pystac.get_stac_version(),
        "stac_extensions": STAC_EXTENSIONS,
        "id": result.scene_id(sensor),
        "bbox": list(lonlat.bounds),
        "geometry": json.loads(shapely.to_geojson(lonlat)),
        "properties": {
            "datetime": _iso(result.acquired_at),
            "gsd": grid.gsd,
            "proj:code": f"EPSG:{epsg}",
            "proj:shape": [grid.height, grid.width],
            "proj:transform": list(grid.transform)[:6],
            "view:sun_elevation": round(result.sun_elevation_deg, 4),
            "view:sun_azimuth": round(result.sun_azimuth_deg, 4),
            "view:off_nadir": 0.0,
            "constellation": "citybaseline-synthetic",
            "platform": "citybaseline-synthetic",
            "citybaseline:sensor": sensor.name,
            "citybaseline:band_time_offsets_s": dict(sensor.time_offsets_s),
            "citybaseline:scale": 0.0001,
            "eo:cloud_cover": round(result.cloud_cover_pct if sensor is VHR else result.s2_cloud_cover_pct, 3),
        },
        "links": [],
        "assets": {
            "image": {
                "href": href,
                "type": COG_MEDIA_TYPE,
                "roles": ["data"],
                "eo:bands": eo_bands,
            }
        },
    }
    return pystac.Item.from_dict(item)


def _write_stac(path: Path, result: RenderResult, sensor: SensorSpec, grid: Grid, href: str) -> None:
    item = stac_item(result, sensor, grid, href)
    write_text_atomic(path, json.dumps(item.to_dict(include_self_link=False), indent=2) + "\n")


def write_preview(path: Path, vhr: np.ndarray, valid: np.ndarray) -> None:
    """RGB quick-look of the VHR image, block-averaged to at most :data:`PREVIEW_MAX_PX` a side."""
    _, h, w = vhr.shape
    f = max(1, -(-max(h, w) // PREVIEW_MAX_PX))
    hh, ww = h // f, w // f
    rgb = vhr[[2, 1, 0], : hh * f, : ww * f].astype(np.float32).reshape(3, hh, f, ww, f).mean(axis=(2, 4))
    v = valid[: hh * f, : ww * f].reshape(hh, f, ww, f).mean(axis=(1, 3)) > 0.5
    img = np.clip((rgb / 10000.0 / 0.35) ** (1 / 1.5), 0, 1) * 255.0
    img[:, ~v] = 0
    with atomic_path(path) as tmp:
        Image.fromarray(np.moveaxis(img.astype(np.uint8), 0, -1), "RGB").save(tmp, format="PNG", optimize=False)


def render_record(result: RenderResult) -> dict[str, object]:
    """``render.json``: the parameters, what they resolved to, and what was drawn."""
    return {
        "generator": "citybaseline baseline.synth",
        "package_version": __version__,
        "params": result.params.describe(),
        "scene_ids": {"vhr": result.scene_id(VHR), "sentinel2": result.scene_id(SENTINEL2)},
        "crs": f"EPSG:{result.vhr_grid.crs.to_epsg()}",
        "bounds": list(result.vhr_grid.bounds),
        "acquired_at": _iso(result.acquired_at),
        "sun": {
            "elevation_deg": round(result.sun_elevation_deg, 4),
            "azimuth_deg": round(result.sun_azimuth_deg, 4),
            "source": result.sun_source,
            "algorithm": "NOAA solar calculator (Meeus), refraction corrected",
        },
        "map_source": result.map_source,
        "cloud_cover_pct": round(result.cloud_cover_pct, 3),
        "counts": result.counts(),
    }


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
