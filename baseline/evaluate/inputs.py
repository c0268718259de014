"""Reading prediction and truth tables for scoring, and putting them in one metric CRS.

Predictions are reprojected to the truth's CRS; when that CRS is geographic
(degrees), both go to the truth's local UTM zone, because the vehicle radius
and heights are in metres. A table without a CRS cannot be compared and raises
:class:`MissingCRSError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS

from baseline.core.geo import utm_crs_for
from baseline.core.geoparquet import read_vector
from baseline.errors import BaselineError, CRSMismatchError, InputFileError


class MissingCRSError(CRSMismatchError):
    """A table to compare has no CRS, so its coordinates cannot be related to the other's."""

    def __init__(self, path: str | Path, other: str | Path) -> None:
        BaselineError.__init__(
            self,
            f"{path}: has no CRS, so it cannot be compared with {other}",
            hint="give the file a CRS, e.g. ogr2ogr -a_srs EPSG:32635 fixed.gpkg file",
        )


def read_table(path: str | Path) -> gpd.GeoDataFrame:
    """Any vector file GDAL reads, or GeoParquet; typed errors for missing or unreadable files."""
    return read_vector(path)


def metric_crs(truth: gpd.GeoDataFrame) -> CRS:
    """The truth's CRS when projected, else the UTM zone of the truth's centre."""
    crs = CRS.from_user_input(truth.crs)
    if crs.is_projected:
        return crs
    if len(truth) == 0:
        raise InputFileError("truth", "is empty and in degrees, so no metric CRS can be chosen")
    lon0, lat0, lon1, lat1 = truth.to_crs(4326).total_bounds
    return utm_crs_for((lon0 + lon1) / 2, (lat0 + lat1) / 2)


def align(
    pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, pred_path: str | Path, truth_path: str | Path,
    crs: CRS | None = None,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, CRS]:
    """Both tables in one metric CRS (``crs``, or the truth's, see :func:`metric_crs`)."""
    if pred.crs is None:
        raise MissingCRSError(pred_path, truth_path)
    if truth.crs is None:
        raise MissingCRSError(truth_path, pred_path)
    target = crs if crs is not None else metric_crs(truth)
    return pred.to_crs(target), truth.to_crs(target), target


def scene_footprint(truth_dir: Path, crs: CRS) -> shapely.Geometry | None:
    """The image extent of the scene that ``truth_dir`` belongs to (``../vhr.json``), in ``crs``.

    A scene folder keeps its truth in ``truth/`` beside the STAC Item of the
    image; the item's ``proj:transform`` and ``proj:shape`` give the extent.
    None when there is no such item.
    """
    item_path = truth_dir.parent / "vhr.json"
    if not item_path.is_file():
        return None
    try:
        props = json.loads(item_path.read_text())["properties"]
        a, b, c, d, e, f = props["proj:transform"][:6]
        rows, cols = props["proj:shape"]
        item_crs = CRS.from_user_input(props["proj:code"])
    except (KeyError, ValueError, TypeError) as exc:
        raise InputFileError(item_path, f"STAC Item lacks proj:transform, proj:shape or proj:code ({exc})") from exc
    transform = Affine(a, b, c, d, e, f)
    corners = np.array([transform @ xy for xy in ((0, 0), (cols, 0), (cols, rows), (0, rows))])
    footprint = shapely.Polygon(corners)
    return gpd.GeoSeries([footprint], crs=item_crs).to_crs(crs).iloc[0]


def extent_of(frames: list[gpd.GeoDataFrame]) -> shapely.Geometry | None:
    """The bounding box of all the given (same-CRS) tables; None when all are empty."""
    boxes = [shapely.box(*f.total_bounds) for f in frames if len(f)]
    return shapely.box(*shapely.union_all(boxes).bounds) if boxes else None


def clip_by_centre(frame: gpd.GeoDataFrame, area: shapely.Geometry | None) -> gpd.GeoDataFrame:
    """Rows whose centroid lies in ``area`` (border included); all rows when ``area`` is None."""
    if area is None or len(frame) == 0:
        return frame.reset_index(drop=True)
    keep = shapely.intersects(area, shapely.centroid(np.asarray(frame.geometry.values, dtype=object)))
    return frame[keep].reset_index(drop=True)
