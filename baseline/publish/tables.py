"""Write the run's GeoParquet tables: validated, in a stable order, with provenance.

Other systems read these files, so each is checked against its column contract
(:mod:`baseline.core.schemas`) before anything is written, rows are sorted by a
stable key so a rerun of the same run gives byte-identical files, and the Parquet
key-value metadata carries a ``citybaseline`` entry (table name, schema version,
code version, run id) beside the GeoParquet ``geo`` entry, which is left as
geopandas wrote it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import baseline
from baseline.core.atomic import atomic_path
from baseline.core.geoparquet import write_geoparquet
from baseline.core.schemas import (
    BUILDINGS_OUT,
    HEIGHT_SOURCES,
    TABLE_SCHEMA_VERSION,
    VEHICLE_CLASSES,
    VEHICLES_OUT,
)
from baseline.errors import OutputError
from baseline.publish.indicators import VEHICLE_FIGURE_COLUMNS, ZONE_KEYS

log = logging.getLogger(__name__)

PROVENANCE_KEY = b"citybaseline"


@dataclass(frozen=True)
class TableSpec:
    """What a published table must hold and how its rows are ordered.

    Attributes:
        name: table name; the file is ``<name>.parquet``.
        required: columns that must be present (contract order; written first).
        sort_keys: candidate row keys; the first present one orders the rows.
        key_required: whether at least one of ``sort_keys`` must be present.
        allowed_values: column -> values it may take (nulls allowed).
        geometry_types: the geometry types the table may hold.
    """

    name: str
    required: tuple[str, ...]
    sort_keys: tuple[str, ...]
    key_required: bool = False
    allowed_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    geometry_types: tuple[str, ...] = ("Polygon", "MultiPolygon")


SPECS: dict[str, TableSpec] = {
    "buildings": TableSpec(
        "buildings", BUILDINGS_OUT, ("building_id",), True, (("height_source", HEIGHT_SOURCES),)
    ),
    "vehicles": TableSpec("vehicles", VEHICLES_OUT, ("vehicle_id",), True, (("class", VEHICLE_CLASSES),)),
    "indicators_city": TableSpec("indicators_city", ("geometry", "city"), ("city", "zone_id")),
    "indicators_h3": TableSpec("indicators_h3", ("geometry", "vehicles_withheld"), ZONE_KEYS, True),
    "indicators_district": TableSpec("indicators_district", ("geometry",), ("zone_id", "district_id", "district", "name")),
}


def publish_tables(
    out_dir: str | Path,
    buildings: gpd.GeoDataFrame,
    vehicles: gpd.GeoDataFrame,
    indicators_city: gpd.GeoDataFrame,
    indicators_h3: gpd.GeoDataFrame,
    indicators_district: gpd.GeoDataFrame | None = None,
    *,
    run_id: str | None = None,
    code_version: str | None = None,
) -> dict[str, Path]:
    """Validate and write the run's tables into ``out_dir``; return name -> path.

    Every table is checked before the first is written, so a contract violation
    leaves the folder as it was. ``run_id`` (e.g. the config hash) and
    ``code_version`` (default: the installed package version) go into each file's
    ``citybaseline`` metadata; keep ``run_id`` a function of the config so that
    reruns stay byte-identical.

    Raises:
        OutputError: a table misses a contract column, has no CRS, holds null or
            wrong-type geometries or values outside the allowed set, or a file
            cannot be written.
    """
    out_dir = Path(out_dir)
    frames: dict[str, gpd.GeoDataFrame] = {
        "buildings": buildings,
        "vehicles": vehicles,
        "indicators_city": indicators_city,
        "indicators_h3": indicators_h3,
    }
    if indicators_district is not None:
        frames["indicators_district"] = indicators_district

    prepared = {name: prepare_table(frame, SPECS[name]) for name, frame in frames.items()}
    provenance = {
        "schema_version": TABLE_SCHEMA_VERSION,
        "code_version": code_version or baseline.__version__,
        "run_id": run_id,
    }
    return {
        name: write_table(frame, out_dir / f"{name}.parquet", {"table": name, **provenance})
        for name, frame in prepared.items()
    }


def prepare_table(frame: gpd.GeoDataFrame, spec: TableSpec) -> gpd.GeoDataFrame:
    """Check ``frame`` against ``spec`` and return it in contract column and row order."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise OutputError(f"{spec.name}: expected a GeoDataFrame, got {type(frame).__name__}")
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise OutputError(
            f"{spec.name}: missing column(s) {', '.join(missing)}",
            hint=f"columns present: {', '.join(map(str, frame.columns)) or '(none)'}",
        )
    if spec.key_required and not any(k in frame.columns for k in spec.sort_keys):
        raise OutputError(
            f"{spec.name}: no key column",
            hint=f"expected one of {', '.join(spec.sort_keys)}",
        )
    if frame.geometry.name != "geometry":
        raise OutputError(f"{spec.name}: the active geometry column is {frame.geometry.name!r}, not 'geometry'")
    if frame.crs is None:
        raise OutputError(f"{spec.name}: the table has no CRS", hint="set one with .set_crs()")
    _check_geometries(frame, spec)
    _check_values(frame, spec)

    extras = [c for c in frame.columns if c not in spec.required and c != "bbox"]
    frame = frame[[*spec.required, *extras]]
    if "vehicles_withheld" in frame.columns:
        frame = withhold_vehicle_figures(frame)
    return sort_rows(frame, spec.sort_keys)


def _check_geometries(frame: gpd.GeoDataFrame, spec: TableSpec) -> None:
    geoms = frame.geometry
    bad_null = geoms.isna() | geoms.is_empty
    if bad_null.any():
        raise OutputError(
            f"{spec.name}: {int(bad_null.sum())} row(s) have a null or empty geometry",
            hint="drop them before publishing",
        )
    types = geoms.geom_type
    wrong = ~types.isin(spec.geometry_types)
    if wrong.any():
        found = ", ".join(sorted(set(types[wrong])))
        raise OutputError(
            f"{spec.name}: geometry type(s) {found} not allowed",
            hint=f"expected {' or '.join(spec.geometry_types)}",
        )


def _check_values(frame: gpd.GeoDataFrame, spec: TableSpec) -> None:
    for column, allowed in spec.allowed_values:
        values = frame[column].dropna()
        bad = sorted(set(map(str, values[~values.isin(allowed)])))
        if bad:
            raise OutputError(
                f"{spec.name}: column {column!r} has value(s) {', '.join(map(repr, bad[:5]))}",
                hint=f"allowed: {', '.join(allowed)}",
            )


def withhold_vehicle_figures(zones: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Blank every vehicle figure of rows marked ``vehicles_withheld`` (privacy).

    ``aggregate`` decides which zones are withheld; publishing enforces it again
    so that no table leaves the run with a count the privacy rule forbids.
    Nullable columns keep their dtype; plain integer columns become float (NaN).
    """
    withheld = zones["vehicles_withheld"].fillna(False).astype(bool).to_numpy()
    if not withheld.any():
        return zones
    columns = [c for c in zones.columns if c in VEHICLE_FIGURE_COLUMNS]
    leaked = [c for c in columns if zones.loc[withheld, c].notna().any()]
    if not leaked:
        return zones
    log.warning(
        "%d withheld zone(s) carry vehicle figures (%s); blanking them",
        int(withheld.sum()), ", ".join(leaked),
    )
    zones = zones.copy()
    for column in leaked:
        if isinstance(zones[column].dtype, pd.api.extensions.ExtensionDtype):
            zones.loc[withheld, column] = pd.NA
        else:
            zones[column] = zones[column].astype("float64")
            zones.loc[withheld, column] = np.nan
    return zones


def sort_rows(frame: gpd.GeoDataFrame, keys: Sequence[str]) -> gpd.GeoDataFrame:
    """Rows in a stable order: by the first of ``keys`` present, ties by geometry WKB."""
    key = next((k for k in keys if k in frame.columns), None)
    order = pd.DataFrame({"_wkb": frame.geometry.to_wkb().to_numpy()}, index=range(len(frame)))
    by = ["_wkb"]
    if key is not None:
        order.insert(0, "_key", frame[key].to_numpy())
        by = ["_key", "_wkb"] if frame[key].duplicated().any() else ["_key"]
    positions = order.sort_values(by, kind="mergesort", na_position="last").index.to_numpy()
    return frame.iloc[positions].reset_index(drop=True)


def write_table(frame: gpd.GeoDataFrame, path: Path, provenance: dict[str, object]) -> Path:
    """Write ``frame`` as GeoParquet 1.1 to ``path`` atomically, adding ``provenance``.

    :func:`baseline.core.geoparquet.write_geoparquet` writes a staged file; its row
    groups are then copied into the final file with one more schema metadata entry,
    so the ``geo`` metadata and bbox covering are exactly as the shared writer made them.
    """
    path = Path(path)
    _remove_stale_stages(path)
    meta_value = json.dumps(provenance, sort_keys=True).encode("utf-8")
    try:
        with (
            atomic_path(path) as final_tmp,
            tempfile.TemporaryDirectory(prefix=_stage_prefix(path), dir=path.parent) as stage_dir,
        ):
            staged = write_geoparquet(frame, Path(stage_dir) / path.name)
            _copy_with_metadata(staged, final_tmp, {PROVENANCE_KEY: meta_value})
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc})") from exc
    return path


def _stage_prefix(path: Path) -> str:
    return f".stage-{path.name}-"


def _remove_stale_stages(path: Path) -> None:
    """Remove staging folders a killed earlier write of ``path`` left behind."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f"{_stage_prefix(path)}*"):
            shutil.rmtree(stale, ignore_errors=True)


def _copy_with_metadata(source: Path, target: Path, extra: dict[bytes, bytes]) -> None:
    source_file = pq.ParquetFile(source)
    schema = source_file.schema_arrow
    schema = schema.with_metadata({**(schema.metadata or {}), **extra})
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        for index in range(source_file.num_row_groups):
            writer.write_table(source_file.read_row_group(index).replace_schema_metadata(schema.metadata))


def read_table_provenance(path: str | Path) -> dict[str, object]:
    """The ``citybaseline`` metadata of a published table (empty if it has none)."""
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(PROVENANCE_KEY)
    return json.loads(raw) if raw else {}
