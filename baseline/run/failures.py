"""Tiles that keep failing: recorded, reported, and kept from sinking the city.

Dask retries a failed tile task ``TILE_RETRIES`` times, and reschedules the
tasks of a worker that died (a killed or out-of-memory worker loses nothing:
its tiles run again elsewhere, and a tile's outputs are written atomically
under its key, so a tile is never counted twice). A tile that still fails
becomes a :class:`TileFailure`. The run then publishes when the failed share
is within ``cluster.max_failed_fraction`` (failed tiles count as area without
coverage, listed in the manifest and the report) and otherwise stops with a
:class:`~baseline.errors.TileFailuresError` naming the tiles; either way the
list is written to ``<out>/.work/failed_tiles.json`` and every finished tile
is kept, so a rerun redoes only the failed ones.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from baseline.core.atomic import write_text_atomic
from baseline.errors import BaselineError, TileFailuresError

if TYPE_CHECKING:
    from baseline.run.tile_task import TileJob

log = logging.getLogger(__name__)

TILE_RETRIES = 2
FAILED_TILES_FILE = "failed_tiles.json"


@dataclass(frozen=True)
class TileFailure:
    """One tile that failed after its retries, and why."""

    tile_id: str
    core: tuple[float, float, float, float]
    core_pixels: int
    error_type: str
    error: str
    traceback: str

    @classmethod
    def from_future(cls, future: Any, job: TileJob) -> TileFailure:
        """The failure of a finished, errored Dask future for ``job``."""
        exc = future.exception()
        tb = future.traceback()
        lines = traceback.format_tb(tb)[-3:] if tb is not None else []
        x0, y0, x1, y1 = job.tile.core
        gsd = job.vehicle_grid.gsd_m
        return cls(
            tile_id=job.tile.tile_id,
            core=(x0, y0, x1, y1),
            core_pixels=int(round((x1 - x0) / gsd) * round((y1 - y0) / gsd)),
            error_type=type(exc).__name__,
            error=str(exc) or type(exc).__name__,
            traceback="".join(lines).strip(),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the manifest and ``failed_tiles.json``."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def check_failures(
    failures: list[tuple[TileFailure, BaseException]], total: int, max_failed_fraction: float, work_dir: Path
) -> list[TileFailure]:
    """Write the failure list; raise when too many tiles failed; return the failures to publish with."""
    report = work_dir / FAILED_TILES_FILE
    if not failures:
        report.unlink(missing_ok=True)
        return []
    tiles = [f for f, _ in failures]
    write_text_atomic(report, json.dumps({"tiles_total": total, "failed": [f.as_dict() for f in tiles]}, indent=2))
    first, first_exc = failures[0]
    if len(failures) == total and isinstance(first_exc, BaselineError):
        raise first_exc  # every tile failed the same way: the input's own error says it best
    share = len(failures) / total
    if share > max_failed_fraction:
        raise TileFailuresError(
            f"{len(failures)} of {total} tiles failed after {TILE_RETRIES} retries; first: tile {first.tile_id}: "
            f"{first.error_type}: {first.error}. Details in {report}; the {total - len(failures)} finished tiles "
            "are kept and a rerun redoes only the failed ones",
            hint="fix the cause and rerun, or allow some failed tiles with cluster.max_failed_fraction",
        )
    log.warning("%d of %d tiles failed and will count as no coverage (see %s)", len(failures), total, report)
    return tiles
