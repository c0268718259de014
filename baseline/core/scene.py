"""The Scene: one georeferenced image as ingest hands it to preprocess.

A Scene carries what later stages need to interpret the pixels: CRS and
transform, ground sampling distance, band names, acquisition time, sun and view
angles, the time offset of each band (for motion from band timing) and a valid
mask. Pixel data stays lazy (Dask-backed xarray) until preprocess asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import xarray as xr
from affine import Affine
from pyproj import CRS

SENSOR_VHR = "vhr"
SENSOR_S2 = "sentinel-2-l2a"
SENSOR_LANDSAT = "landsat-c2-l2"
SENSOR_LANDSAT_L1 = "landsat-l1"  # Level-1 digital numbers: not surface reflectance
SENSOR_S2_L1C = "sentinel-2-l1c"  # top-of-atmosphere reflectance: not L2A


@dataclass(frozen=True)
class Scene:
    """One image and the metadata needed to measure from it.

    Attributes:
        scene_id: stable identifier (the STAC Item id).
        sensor: ``"vhr"``, ``"sentinel-2-l2a"``, ``"landsat-c2-l2"``, or the Level-1 products
            ``"sentinel-2-l1c"`` and ``"landsat-l1"`` (what the pixels can support).
        data: ``(band, y, x)`` array, lazy; dtype as stored (uint16 reflectance).
        valid: ``(y, x)`` boolean array, True where a pixel is in-image and usable.
        crs, transform: the pixel grid's georeference.
        gsd_m: ground sampling distance in metres.
        bands: band names in ``data`` order (``blue``, ``green``, ``red``, ``nir``, ``scl``...).
        acquired_at: acquisition instant, timezone-aware UTC.
        sun_elevation_deg, sun_azimuth_deg: sun position at acquisition.
        off_nadir_deg: view angle from nadir.
        band_time_offsets_s: seconds after the first band at which each band was sensed.
        scale: multiply ``data`` by this to get reflectance (0 to 1).
        href: where the pixels came from; checksum: sha256 of that file, for provenance.
        provenance: for a fetched scene, where and how it was fetched (endpoint, collection,
            items, acquisition chosen and why); no secrets. Copied into the run's manifest.
    """

    scene_id: str
    sensor: str
    data: xr.DataArray
    valid: xr.DataArray
    crs: CRS
    transform: Affine
    gsd_m: float
    bands: tuple[str, ...]
    acquired_at: datetime
    sun_elevation_deg: float
    sun_azimuth_deg: float
    off_nadir_deg: float = 0.0
    band_time_offsets_s: dict[str, float] = field(default_factory=dict)
    scale: float = 1e-4
    href: Path | str | None = None
    checksum: str | None = None
    provenance: dict[str, object] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the pixel grid."""
        return int(self.data.sizes["y"]), int(self.data.sizes["x"])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the scene's CRS."""
        rows, cols = self.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    def band_index(self, name: str) -> int:
        """Position of band ``name`` in ``data``."""
        from baseline.errors import SceneError

        try:
            return self.bands.index(name)
        except ValueError:
            raise SceneError(
                f"scene {self.scene_id!r} has no band {name!r}",
                hint=f"bands present: {', '.join(self.bands)}",
            ) from None
