"""Map features the renderer draws that the shared OSM context does not carry.

- the sea: OSM maps it only as ``natural=coastline`` lines (land on the left,
  water on the right); the extract's rectangle is cut along them and the pieces
  on the water side become sea;
- railways (ballast beds and rails), tram rails in the streets, and platforms.

Tunnels are left out (they are not visible from above).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS

from baseline.errors import InputFileError

EXTEND_M = 120.0       # how far a coastline cut by the extract's edge is carried on to that edge
EDGE_NEAR_M = 60.0     # a coastline end this close to the edge was cut by it


@dataclass(frozen=True)
class MapExtras:
    """Sea polygons, railway and tram centrelines, and platform polygons (all in one CRS)."""

    sea: np.ndarray
    rails: np.ndarray
    trams: np.ndarray
    platforms: np.ndarray


def load_extras(pbf: Path, crs: CRS, aoi: shapely.Geometry) -> MapExtras:
    """Read the extra features of ``pbf`` in ``crs``, clipped to ``aoi``."""
    return _load(str(Path(pbf).resolve()), crs.to_wkt(), shapely.to_wkb(aoi))


@cache
def _load(pbf: str, crs_wkt: str, aoi_wkb: bytes) -> MapExtras:
    import pyrosm

    aoi = shapely.from_wkb(aoi_wkb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            data = pyrosm.OSM(pbf).get_data_by_custom_criteria(
                custom_filter={"railway": ["rail", "tram", "platform", "light_rail"], "natural": ["coastline"]},
                filter_type="keep", keep_nodes=False,
            )
        except Exception as exc:  # pyrosm raises bare errors on corrupt files
            raise InputFileError(pbf, f"not a readable OSM PBF ({exc})") from exc
    empty = np.empty(0, dtype=object)
    if data is None or data.empty:
        return MapExtras(empty, empty, empty, empty)
    data = data.to_crs(CRS.from_wkt(crs_wkt))
    data = data[data.intersects(aoi)]
    hidden = np.zeros(len(data), dtype=bool)
    for column in ("tunnel", "covered"):
        if column in data:
            hidden |= data[column].notna().to_numpy() & (data[column].astype(str) != "no").to_numpy()
    data = data[~hidden]
    railway = data["railway"].astype(str).to_numpy() if "railway" in data else np.full(len(data), "")
    natural = data["natural"].astype(str).to_numpy() if "natural" in data else np.full(len(data), "")
    kind = shapely.get_type_id(data.geometry.values)
    lines = np.isin(kind, (1, 5))
    polys = np.isin(kind, (3, 6))
    geoms = data.geometry.values
    return MapExtras(
        sea=sea_polygons(geoms[lines & (natural == "coastline")], aoi),
        rails=geoms[lines & np.isin(railway, ["rail", "light_rail"])],
        trams=geoms[lines & (railway == "tram")],
        platforms=geoms[polys & (railway == "platform")],
    )


def sea_polygons(coastlines: np.ndarray, aoi: shapely.Geometry) -> np.ndarray:
    """Parts of ``aoi`` on the water (right-hand) side of the coastlines."""
    if len(coastlines) == 0:
        return np.empty(0, dtype=object)
    merged = shapely.get_parts(shapely.line_merge(shapely.union_all(coastlines)))
    edge = aoi.boundary
    lines = [_extend_to_edge(line, edge) for line in merged]
    noded = shapely.union_all([edge, *lines])
    pieces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    pieces = pieces[shapely.area(shapely.intersection(pieces, aoi)) > 1.0]
    sea = []
    for piece in pieces:
        probe = piece.point_on_surface()
        line = min(merged, key=lambda ln: ln.distance(probe))
        s = line.project(probe)
        a = line.interpolate(max(s - 0.5, 0.0))
        b = line.interpolate(min(s + 0.5, line.length))
        p = line.interpolate(s)
        cross = (b.x - a.x) * (probe.y - p.y) - (b.y - a.y) * (probe.x - p.x)
        if cross < 0:  # right of the coastline's direction: water
            sea.append(shapely.intersection(piece, aoi))
    return np.asarray(sea, dtype=object)


def _extend_to_edge(line: shapely.LineString, edge: shapely.Geometry) -> shapely.LineString:
    """Carry each end that stops near the extract's edge straight on past it."""
    coords = np.asarray(line.coords)[:, :2]
    if len(coords) < 2 or line.is_closed:
        return line
    out = [coords]
    for end, prev, where in ((coords[0], coords[1], 0), (coords[-1], coords[-2], -1)):
        if shapely.Point(end).distance(edge) > EDGE_NEAR_M:
            continue
        d = end - prev
        d = d / max(np.hypot(*d), 1e-9)
        tip = end + d * EXTEND_M
        out.insert(0 if where == 0 else len(out), tip[None, :])
    return shapely.LineString(np.vstack(out))
