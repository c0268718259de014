"""Low-level drawing for the report: geometries to matplotlib artists, figures to ``<img>``.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot, no global
backend switch) and embedded as base64 SVG data URIs, so the report needs no file
or network beside itself and each figure's ids and styles stay inside its image.
Text is stored as paths, so no font has to be present where the report is read.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from html import escape

import numpy as np
import shapely
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath

# above this many shapes a layer is embedded as a raster inside the SVG
RASTERIZE_ABOVE = 20_000

STYLE = {
    "svg.fonttype": "path",
    "svg.hashsalt": "citybaseline",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.edgecolor": "#6b7280",
    "axes.labelcolor": "#1f2933",
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "legend.fontsize": 8.5,
    "legend.frameon": True,
    "legend.framealpha": 0.92,
    "legend.edgecolor": "#d1d5db",
}


@contextmanager
def figure(width_in: float, height_in: float, *, font_size: float = 9.0) -> Iterator[Figure]:
    """A fresh figure drawn under the report's style (deterministic SVG ids).

    Maps are shown smaller than their drawn size, so they ask for a larger ``font_size``.
    """
    scale = font_size / 9.0
    style = {**STYLE, "font.size": font_size, "legend.fontsize": 8.5 * scale,
             "legend.title_fontsize": 8.5 * scale, "axes.labelsize": 9 * scale,
             "xtick.labelsize": 8.5 * scale, "ytick.labelsize": 8.5 * scale}
    with rc_context(style):
        yield Figure(figsize=(width_in, height_in), layout="constrained")


def figure_to_img(fig: Figure, alt: str) -> str:
    """An ``<img>`` element holding ``fig`` as a base64 SVG data URI, trimmed to its content."""
    with rc_context(STYLE):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None}, facecolor="white", dpi=200,
                    bbox_inches="tight", pad_inches=0.04)
    svg = re.sub(r"<metadata>.*?</metadata>", "", buffer.getvalue(), flags=re.DOTALL)
    size = re.search(r'<svg[^>]*\swidth="([\d.]+)pt"[^>]*\sheight="([\d.]+)pt"', svg)
    width_pt, height_pt = (float(size[1]), float(size[2])) if size else fig.get_size_inches() * 72.0
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (
        f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}" '
        f'width="{width_pt * 4 / 3:.0f}" height="{height_pt * 4 / 3:.0f}">'
    )


def polygon_paths(geometries: Iterable[shapely.Geometry]) -> list[MplPath]:
    """One matplotlib path per (multi)polygon, holes included."""
    paths = []
    for geom in geometries:
        parts = getattr(geom, "geoms", [geom])
        rings = []
        for part in parts:
            if part.is_empty or part.geom_type != "Polygon":
                continue
            rings.append(MplPath(np.asarray(part.exterior.coords)[:, :2], closed=True))
            rings.extend(MplPath(np.asarray(r.coords)[:, :2], closed=True) for r in part.interiors)
        if rings:
            paths.append(MplPath.make_compound_path(*rings))
        else:
            paths.append(MplPath(np.empty((0, 2))))
    return paths


def add_polygons(ax: Axes, geometries: Iterable[shapely.Geometry], **kwargs: object) -> PathCollection:
    """Draw polygons as one collection (rasterised when there are very many)."""
    paths = polygon_paths(geometries)
    collection = PathCollection(paths, **kwargs)
    collection.set_transform(ax.transData)
    if len(paths) > RASTERIZE_ABOVE:
        collection.set_rasterized(True)
    ax.add_collection(collection, autolim=False)
    return collection


def add_lines(ax: Axes, geometries: Iterable[shapely.Geometry], **kwargs: object) -> LineCollection:
    """Draw linework (LineStrings or polygon outlines) as one collection."""
    segments = []
    for geom in geometries:
        for part in getattr(geom, "geoms", [geom]):
            if part.is_empty:
                continue
            if part.geom_type == "Polygon":
                segments.append(np.asarray(part.exterior.coords)[:, :2])
            elif part.geom_type in {"LineString", "LinearRing"}:
                segments.append(np.asarray(part.coords)[:, :2])
    collection = LineCollection(segments, **kwargs)
    if len(segments) > RASTERIZE_ABOVE:
        collection.set_rasterized(True)
    ax.add_collection(collection, autolim=False)
    return collection


def nice_length(max_length: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not above ``max_length``."""
    if max_length <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(max_length))
    for step in (5, 2, 1):
        if step * power <= max_length:
            return float(step * power)
    return float(power)


def add_scale_bar(ax: Axes, extent: tuple[float, float, float, float]) -> None:
    """A two-tone scale bar in the lower left (coordinates in metres)."""
    xmin, ymin, xmax, ymax = extent
    width, height = xmax - xmin, ymax - ymin
    length = nice_length(width / 4.0)
    x0, y0 = xmin + 0.04 * width, ymin + 0.045 * height
    bar_h = 0.012 * height
    ax.add_patch(_rect(x0 - 0.015 * width, y0 - 0.02 * height, length + 0.03 * width, bar_h + 0.075 * height,
                       face="white", edge="none", alpha=0.8, zorder=9))
    half = length / 2.0
    ax.add_patch(_rect(x0, y0, half, bar_h, face="#1f2933", edge="#1f2933", zorder=10))
    ax.add_patch(_rect(x0 + half, y0, half, bar_h, face="white", edge="#1f2933", zorder=10))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x0 + length / 2, y0 + bar_h + 0.012 * height, label, ha="center", va="bottom",
            fontsize="medium", color="#1f2933", zorder=11)


def add_north_arrow(ax: Axes) -> None:
    """A small north arrow in the upper right (grid north of the projected map)."""
    ax.annotate(
        "N", xy=(0.955, 0.965), xytext=(0.955, 0.875), xycoords="axes fraction",
        ha="center", va="center", fontsize="large", fontweight="bold", color="#1f2933", zorder=11,
        arrowprops={"arrowstyle": "-|>", "color": "#1f2933", "lw": 1.2, "shrinkA": 6, "shrinkB": 0},
    )


def style_map_axes(ax: Axes, extent: tuple[float, float, float, float]) -> None:
    """Equal aspect, no ticks, a thin frame, fitted to ``extent``."""
    xmin, ymin, xmax, ymax = extent
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("#f8fafc")
    for spine in ax.spines.values():
        spine.set_edgecolor("#cbd5e1")
        spine.set_linewidth(0.8)


def _rect(x: float, y: float, w: float, h: float, *, face: str, edge: str, zorder: int,
          alpha: float = 1.0):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, facecolor=face, edgecolor=edge, lw=0.6, zorder=zorder, alpha=alpha)
