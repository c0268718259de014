"""GeoParquet 1.1 read and write, used by every table the project makes.

Tables are written with the CRS as PROJJSON in the ``geo`` metadata and a
``bbox`` covering column (xmin, ymin, xmax, ymax per row), so GDAL, QGIS,
DuckDB and geopandas read them as they are. Writes are atomic.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from baseline.core.atomic import atomic_path
from baseline.errors import InputFileError, OutputError

GEOPARQUET_VERSION = "1.1.0"


def write_geoparquet(frame: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write ``frame`` as GeoParquet 1.1 with a bbox covering column, atomically.

    The frame must carry a CRS; rows are written in their current order and the
    index is dropped, so equal frames give byte-identical files.
    """
    path = Path(path)
    if frame.crs is None:
        raise OutputError(f"{path}: refusing to write a table without a CRS")
    frame = frame.reset_index(drop=True)
    if "bbox" in frame.columns:  # a stale covering column read back from a file
        frame = frame.drop(columns="bbox")
    with atomic_path(path) as tmp:
        frame.to_parquet(
            tmp,
            index=False,
            schema_version=GEOPARQUET_VERSION,
            write_covering_bbox=True,
            compression="zstd",
        )
    return path


def read_geoparquet(path: str | Path) -> gpd.GeoDataFrame:
    """Read a GeoParquet table, without its bbox covering column."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    try:
        frame = gpd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types
        raise InputFileError(path, f"not a readable GeoParquet file ({exc})") from exc
    if "bbox" in frame.columns:
        frame = frame.drop(columns="bbox")
    return frame


def read_vector(path: str | Path) -> gpd.GeoDataFrame:
    """Read any vector file: GeoParquet by suffix, else anything GDAL/pyogrio reads."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found", hint="check the path")
    if path.suffix.lower() in {".parquet", ".geoparquet"}:
        return read_geoparquet(path)
    try:
        return gpd.read_file(path)
    except Exception as exc:  # pyogrio's DataSourceError and friends
        raise InputFileError(
            path, f"not a readable vector file ({exc})", hint="use GeoJSON, GeoPackage or GeoParquet"
        ) from exc
