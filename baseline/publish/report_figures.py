"""The report's figures: maps of buildings and vehicles, heights, on-road share per H3 cell.

Each function returns one ``<figure>`` element with a stable id (tests and readers
find figures by it). When the data a figure needs is missing, or the imagery
cannot support it, the figure says so in words instead of drawing something
misleading, and the report still renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

import geopandas as gpd
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter
from pyproj import CRS

from baseline.publish.report_facts import ReportFacts
from baseline.publish.report_format import fmt_number, fmt_percent
from baseline.publish.report_plot import (
    add_lines,
    add_north_arrow,
    add_polygons,
    add_scale_bar,
    figure,
    figure_to_img,
    style_map_axes,
)

ON_ROAD_COLOUR = "#D55E00"  # Okabe-Ito vermillion
PARKED_COLOUR = "#0072B2"  # Okabe-Ito blue
ROAD_COLOUR = "#cbd5e1"
FAINT_BUILDING = "#e2e8f0"
WITHHELD_FACE = "#d1d5db"
MAP_WIDTH_IN = 5.6
MAP_FONT = 12.5  # maps are shown at about half their drawn size, side by side


@dataclass(frozen=True)
class MapLayers:
    """Every layer of the maps, in one projected CRS, and the extent they share."""

    crs: CRS
    extent: tuple[float, float, float, float]
    buildings: gpd.GeoDataFrame
    vehicles: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame | None
    aoi: gpd.GeoSeries | None


def prepare_layers(
    buildings: gpd.GeoDataFrame,
    vehicles: gpd.GeoDataFrame,
    cells: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    aoi: gpd.GeoDataFrame | gpd.GeoSeries | None,
) -> MapLayers:
    """Bring all layers into one metric CRS (the buildings' if projected) and fit an extent."""
    frames = [f for f in (buildings, vehicles, cells, roads, aoi) if f is not None and f.crs is not None]
    crs = next((CRS.from_user_input(f.crs) for f in frames if CRS.from_user_input(f.crs).is_projected), None)
    if crs is None:
        nonempty = [f for f in frames if len(f)]
        crs = nonempty[0].estimate_utm_crs() if nonempty else CRS.from_epsg(3857)

    def to(frame):
        if frame is None:
            return None
        if frame.crs is None or not len(frame):
            return frame
        return frame.to_crs(crs)

    aoi_series = None
    if aoi is not None:
        aoi_series = to(aoi).geometry if isinstance(aoi, gpd.GeoDataFrame) else to(aoi)
    layers = [to(buildings), to(vehicles), to(cells)]
    bounds_from = [aoi_series] if aoi_series is not None and len(aoi_series) else [
        f.geometry for f in layers if f is not None and len(f)
    ]
    return MapLayers(
        crs=crs,
        extent=_extent(bounds_from),
        buildings=layers[0],
        vehicles=layers[1],
        cells=layers[2],
        roads=to(roads),
        aoi=aoi_series,
    )


def _extent(series: list[gpd.GeoSeries]) -> tuple[float, float, float, float]:
    if not series:
        return (0.0, 0.0, 1000.0, 1000.0)
    bounds = np.array([s.total_bounds for s in series])
    xmin, ymin = bounds[:, 0].min(), bounds[:, 1].min()
    xmax, ymax = bounds[:, 2].max(), bounds[:, 3].max()
    pad = 0.03 * max(xmax - xmin, ymax - ymin, 1.0)
    return (xmin - pad, ymin - pad, xmax + pad, ymax + pad)


def _map_size(extent: tuple[float, float, float, float], extra_width_in: float) -> tuple[float, float]:
    """Figure size whose map axes fit ``extent`` (about 5.6 in wide, at most 7 in tall)."""
    xmin, ymin, xmax, ymax = extent
    aspect = (ymax - ymin) / max(xmax - xmin, 1e-9)
    width = MAP_WIDTH_IN
    height = float(np.clip(width * aspect, 2.5, 7.0))
    width = height / aspect
    return width + extra_width_in, height + 0.2


def figure_block(fig_id: str, body: str, caption: str) -> str:
    """A ``<figure>`` with its id, content and caption."""
    return f'<figure id="{fig_id}" class="figure">{body}<figcaption>{caption}</figcaption></figure>'


def placeholder(fig_id: str, message: str, caption: str) -> str:
    """A figure that explains, in words, why there is nothing to draw."""
    body = f'<div class="not-measurable" role="note"><span>{escape(message)}</span></div>'
    return figure_block(fig_id, body, caption)


def _draw_context(ax, layers: MapLayers, *, faint_buildings: bool) -> None:
    if layers.roads is not None and len(layers.roads):
        road_geoms = layers.roads.geometry
        if road_geoms.geom_type.isin(["Polygon", "MultiPolygon"]).all():
            add_polygons(ax, road_geoms, facecolor=ROAD_COLOUR, edgecolor="none", zorder=1)
        else:
            add_lines(ax, road_geoms, colors=ROAD_COLOUR, linewidths=1.6, zorder=1)
    if faint_buildings and len(layers.buildings):
        add_polygons(ax, layers.buildings.geometry, facecolor=FAINT_BUILDING,
                     edgecolor="#cbd5e1", linewidths=0.3, zorder=2)
    if layers.aoi is not None and len(layers.aoi):
        add_lines(ax, layers.aoi, colors="#475569", linewidths=0.9, linestyles=(0, (4, 3)), zorder=8)


def buildings_map(layers: MapLayers, facts: ReportFacts) -> str:
    """Buildings coloured by height, over faint roads, with a colour bar."""
    fig_id = "fig-buildings-map"
    caption = ("<strong>Buildings by height.</strong> Each footprint is coloured by its estimated "
               "height; roads in light grey; dashed line: the mapped area.")
    frame = layers.buildings
    if not facts.capabilities.single_buildings:
        cells = layers.cells
        if "coverage_ratio" in cells.columns and np.isfinite(cells["coverage_ratio"].to_numpy(dtype=float)).any():
            return _coverage_map(layers, facts, fig_id)
        return placeholder(fig_id, f"Single buildings are not measurable from this imagery "
                           f"({facts.sensor_name}, {fmt_number(facts.gsd_m)} m pixels).", caption)
    if "height_m" not in frame.columns:
        return placeholder(fig_id, "Building heights are not measurable from this imagery: "
                           "the run produced no heights.", caption)
    if not len(frame):
        return placeholder(fig_id, "No buildings were detected in the mapped area.", caption)
    heights = frame["height_m"].to_numpy(dtype=float)
    known = np.isfinite(heights)
    vmax = float(np.nanpercentile(heights, 98)) if known.any() else 1.0
    vmax = max(vmax, 1.0)
    norm = Normalize(0.0, vmax)
    cmap = colormaps["viridis"]
    with figure(*_map_size(layers.extent, 0.0), font_size=MAP_FONT) as fig:
        ax = fig.add_subplot()
        _draw_context(ax, layers, faint_buildings=False)
        if (~known).any():
            add_polygons(ax, frame.geometry[~known], facecolor="white", edgecolor="#94a3b8",
                         linewidths=0.4, zorder=3)
        many = len(frame) > 2000  # outlines would drown the colours
        coll = add_polygons(ax, frame.geometry[known], cmap=cmap, norm=norm,
                            edgecolor="none" if many else "#334155", linewidths=0.15, zorder=4)
        coll.set_array(heights[known])
        style_map_axes(ax, layers.extent)
        add_scale_bar(ax, layers.extent)
        add_north_arrow(ax)
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, location="bottom", shrink=0.7,
                           aspect=28, pad=0.02, extend="max" if np.nanmax(heights) > vmax else "neither")
        bar.set_label("Building height (m)")
        bar.outline.set_edgecolor("#cbd5e1")
        img = figure_to_img(fig, f"Map of {len(frame)} buildings coloured by height")
    if (~known).any():
        caption += f" White: {int((~known).sum())} buildings without a height estimate."
    return figure_block(fig_id, img, caption)


def _finish_share_map(fig, ax, extent, norm: Normalize, cmap, label: str) -> None:
    """Axes style, scale bar, north arrow and a percent colour bar, common to the per-cell share maps."""
    style_map_axes(ax, extent)
    add_scale_bar(ax, extent)
    add_north_arrow(ax)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, pad=0.02,
                       format=PercentFormatter(1.0, decimals=0))
    bar.set_label(label)
    bar.outline.set_edgecolor("#cbd5e1")


def _coverage_map(layers: MapLayers, facts: ReportFacts, fig_id: str) -> str:
    """Built-up coverage per H3 cell, for imagery that sees built-up area but not single buildings."""
    cells = layers.cells
    coverage = cells["coverage_ratio"].to_numpy(dtype=float)
    shown = np.isfinite(coverage)
    norm = Normalize(0.0, max(0.05, float(np.nanmax(coverage))))
    cmap = colormaps["YlGnBu"]
    extent = _extent([g for g in (layers.aoi, cells.geometry) if g is not None and len(g)])
    with figure(*_map_size(extent, 1.2), font_size=MAP_FONT) as fig:
        ax = fig.add_subplot()
        _draw_context(ax, layers, faint_buildings=True)
        coll = add_polygons(ax, cells.geometry[shown], cmap=cmap, norm=norm, alpha=0.85, edgecolor="white",
                            linewidths=0.8, zorder=6)
        coll.set_array(coverage[shown])
        if (~shown).any():
            add_polygons(ax, cells.geometry[~shown], facecolor=WITHHELD_FACE, edgecolor="#6b7280", hatch="////",
                         linewidths=0.6, alpha=0.9, zorder=6)
        _finish_share_map(fig, ax, extent, norm, cmap, "Built-up share of the ground")
        img = figure_to_img(fig, f"Map of built-up coverage in {int(shown.sum())} H3 cells")
    caption = (f"<strong>Built-up coverage per hexagonal cell.</strong> An area estimate from "
               f"{escape(facts.sensor_name)} {fmt_number(facts.gsd_m)} m pixels (share of each pixel covered by "
               "buildings, averaged over the cell), not a sum over single buildings, which this imagery does not "
               "resolve. Hatched: too little clear ground for a figure.")
    return figure_block(fig_id, img, caption)


def vehicles_map(layers: MapLayers, facts: ReportFacts) -> str:
    """Vehicles on the road and parked, in two colours, over faint roads and buildings."""
    fig_id = "fig-vehicles-map"
    caption = ("<strong>Vehicles on the road and parked.</strong> One dot per detected vehicle, "
               "over roads and buildings in grey.")
    frame = layers.vehicles
    caps = facts.capabilities
    if not (caps.cars or caps.large_moving_only):
        return placeholder(fig_id, f"Vehicles are not measurable from this imagery "
                           f"({facts.sensor_name}, {fmt_number(facts.gsd_m)} m pixels).", caption)
    if "on_road" not in frame.columns:
        return placeholder(fig_id, "On-road versus parked is not measurable from this run: "
                           "vehicles carry no on-road flag.", caption)
    if not len(frame) and caps.large_moving_only and not caps.cars:
        return placeholder(fig_id, f"Cars are not measurable from this imagery ({facts.sensor_name}, "
                           f"{fmt_number(facts.gsd_m)} m pixels); moving trucks, where found, are in "
                           "trucks_s2.parquet as relative traffic.", caption)
    if not len(frame):
        return placeholder(fig_id, "No vehicles were detected in the mapped area.", caption)
    on_road = frame["on_road"].fillna(False).astype(bool).to_numpy()
    points = frame.geometry.centroid
    size = 16.0 if len(frame) < 1000 else 8.0 if len(frame) < 10_000 else 3.0
    with figure(*_map_size(layers.extent, 0.0), font_size=MAP_FONT) as fig:
        ax = fig.add_subplot()
        _draw_context(ax, layers, faint_buildings=True)
        for mask, colour in ((~on_road, PARKED_COLOUR), (on_road, ON_ROAD_COLOUR)):
            if mask.any():
                ax.scatter(points.x[mask], points.y[mask], s=size, c=colour, edgecolors="white",
                           linewidths=0.3, zorder=5, rasterized=bool(mask.sum() > 20_000))
        style_map_axes(ax, layers.extent)
        add_scale_bar(ax, layers.extent)
        add_north_arrow(ax)
        handles = [
            Line2D([], [], marker="o", ls="", color=ON_ROAD_COLOUR, markersize=6,
                   label=f"On the road ({int(on_road.sum()):,})"),
            Line2D([], [], marker="o", ls="", color=PARKED_COLOUR, markersize=6,
                   label=f"Parked ({int((~on_road).sum()):,})"),
            Patch(facecolor=ROAD_COLOUR, label="Roads"),
            Patch(facecolor=FAINT_BUILDING, edgecolor="#cbd5e1", label="Buildings"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        img = figure_to_img(fig, f"Map of {len(frame)} vehicles, on the road or parked")
    if caps.large_moving_only:
        caption += " At this resolution only large moving vehicles are visible."
    return figure_block(fig_id, img, caption)


def height_histogram(buildings: gpd.GeoDataFrame, facts: ReportFacts) -> str:
    """How many buildings have which height, with mean and median marked."""
    fig_id = "fig-height-hist"
    caption = "<strong>Building heights.</strong> Number of buildings per 3 m height band (about one storey)."
    if "height_m" not in buildings.columns or not facts.capabilities.single_buildings:
        return placeholder(fig_id, "Building heights are not measurable from this imagery.", caption)
    heights = buildings["height_m"].to_numpy(dtype=float)
    heights = heights[np.isfinite(heights)]
    if not heights.size:
        return placeholder(fig_id, "No building heights were measured.", caption)
    top = float(np.max(heights))
    width = 3.0 if top <= 120 else float(np.ceil(top / 40.0))
    bins = np.arange(0.0, top + width, width)
    if bins.size < 2:
        bins = np.array([0.0, width])
    mean, median = float(np.mean(heights)), float(np.median(heights))
    with figure(6.4, 3.2) as fig:
        ax = fig.add_subplot()
        ax.hist(heights, bins=bins, color="#3b6ea8", edgecolor="white", linewidth=0.6, zorder=3)
        ax.axvline(mean, color="#D55E00", lw=1.4, zorder=4, label=f"Mean {mean:.1f} m")
        ax.axvline(median, color="#1f2933", lw=1.2, ls=(0, (4, 2)), zorder=4, label=f"Median {median:.1f} m")
        ax.set_xlabel("Building height (m)")
        ax.set_ylabel("Number of buildings")
        ax.set_xlim(0, bins[-1])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(axis="y", color="#e5e7eb", lw=0.7, zorder=0)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(loc="upper right")
        img = figure_to_img(fig, f"Histogram of {heights.size} building heights")
    return figure_block(fig_id, img, caption)


def h3_share_map(layers: MapLayers, facts: ReportFacts) -> str:
    """On-road share per H3 cell; cells withheld for privacy hatched in grey."""
    fig_id = "fig-h3-share"
    threshold = facts.privacy_min_vehicles
    withheld_label = f"withheld (<{threshold} vehicles)" if threshold else "withheld (too few vehicles)"
    res = f" (H3 resolution {facts.h3_resolution})" if facts.h3_resolution is not None else ""
    caption = (f"<strong>Share of vehicles on the road, per hexagonal cell{res}.</strong> "
               f"Hatched grey: {escape(withheld_label)}, to protect privacy.")
    cells = layers.cells
    if "on_road_share" not in cells.columns or not facts.capabilities.cars:
        return placeholder(fig_id, "On-road share per cell is not measurable from this imagery.", caption)
    if not len(cells):
        return placeholder(fig_id, "No cells to show.", caption)
    share = cells["on_road_share"].to_numpy(dtype=float)
    withheld = np.zeros(len(cells), bool)
    for flag in ("vehicles_withheld", "figures_withheld"):
        if flag in cells.columns:
            withheld |= cells[flag].fillna(False).astype(bool).to_numpy()
    shown = ~withheld & np.isfinite(share)
    empty = ~withheld & ~np.isfinite(share)
    norm = Normalize(0.0, 1.0)
    cmap = colormaps["YlOrRd"]
    extent = _extent([s for s in (layers.aoi, cells.geometry) if s is not None and len(s)])
    with figure(*_map_size(extent, 1.2), font_size=MAP_FONT) as fig:
        ax = fig.add_subplot()
        _draw_context(ax, layers, faint_buildings=True)
        geoms = cells.geometry
        if shown.any():
            coll = add_polygons(ax, geoms[shown], cmap=cmap, norm=norm, alpha=0.85,
                                edgecolor="white", linewidths=0.8, zorder=6)
            coll.set_array(share[shown])
        if withheld.any():
            add_polygons(ax, geoms[withheld], facecolor=WITHHELD_FACE, edgecolor="#6b7280",
                         hatch="////", linewidths=0.6, alpha=0.9, zorder=6)
        if empty.any():
            add_polygons(ax, geoms[empty], facecolor="white", edgecolor="#94a3b8",
                         linewidths=0.6, alpha=0.8, zorder=6)
        if len(cells) <= 60:
            _label_cells(ax, geoms, share, withheld, cmap, norm)
        _finish_share_map(fig, ax, extent, norm, cmap, "Vehicles on the road / vehicles seen")
        handles = [Patch(facecolor=WITHHELD_FACE, edgecolor="#6b7280", hatch="////", label=withheld_label)]
        if empty.any():
            handles.append(Patch(facecolor="white", edgecolor="#94a3b8", label="no vehicles seen"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        img = figure_to_img(fig, f"Map of on-road share in {len(cells)} H3 cells, {int(withheld.sum())} withheld")
    caption += f" {int(withheld.sum())} of {len(cells)} cells are withheld."
    return figure_block(fig_id, img, caption)


def _label_cells(ax, geoms, share, withheld, cmap, norm) -> None:
    points = geoms.representative_point()
    for point, value, hidden in zip(points, share, withheld, strict=True):
        if hidden or not np.isfinite(value):
            continue
        r, g, b, _ = cmap(norm(value))
        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.55
        ax.text(point.x, point.y, fmt_percent(float(value)), ha="center", va="center", fontsize="small",
                color="white" if dark else "#1f2933", fontweight="bold", zorder=7)
