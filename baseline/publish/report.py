"""The planner's report: one self-contained ``report.html`` per run.

The page carries everything it shows: CSS inline, figures as SVG data URIs and
a Content-Security-Policy that forbids any request, so it opens the same from
a laptop, an e-mail attachment or an air-gapped archive, and prints cleanly.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path
from string import Template
from typing import Any

import geopandas as gpd

from baseline.core.atomic import write_text_atomic
from baseline.errors import OutputError
from baseline.publish import report_figures as figures
from baseline.publish import report_sections as sections
from baseline.publish.report_facts import ReportFacts, gather_facts
from baseline.publish.report_format import fmt_date, fmt_number

REPORT_NAME = "report.html"


def write_report(
    out_dir: str | Path,
    *,
    buildings: gpd.GeoDataFrame,
    vehicles: gpd.GeoDataFrame,
    indicators_city: gpd.GeoDataFrame,
    indicators_h3: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None = None,
    aoi: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    context: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/report.html`` atomically and return its path.

    The tables are those :func:`publish_tables` writes (any CRS; they are drawn in
    one projected CRS). Missing optional columns degrade a figure to a sentence
    saying what is not measurable; they never fail the report.

    ``context`` fills what the tables do not carry (all keys optional):
    ``title``, ``city_name``, ``timezone``, ``run_id``, ``config_hash``,
    ``code_version``, ``scene_ids`` (list), ``privacy_min_vehicles`` (int),
    ``models`` (list of dicts with ``name``, ``version``, ``task``,
    ``precision``, ``recall``) and ``car_parc`` (dict with ``value``, ``year``,
    ``source``, ``note``, ``illustrative``, as in the data catalog). Values in the
    city indicator table (``sensor``, ``gsd_m``, ``acquired_at_*``, ``car_parc_*``)
    take precedence.

    Raises:
        OutputError: the report cannot be written.
    """
    context = dict(context or {})
    facts = gather_facts(buildings, vehicles, indicators_city, indicators_h3, context)
    html = render_report_html(facts, buildings, vehicles, indicators_city, indicators_h3, roads, aoi)
    path = Path(out_dir) / REPORT_NAME
    try:
        write_text_atomic(path, html)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"{path}: cannot write the report ({exc})") from exc
    return path


def render_report_html(
    facts: ReportFacts,
    buildings: gpd.GeoDataFrame,
    vehicles: gpd.GeoDataFrame,
    indicators_city: gpd.GeoDataFrame,
    indicators_h3: gpd.GeoDataFrame,
    roads: gpd.GeoDataFrame | None,
    aoi: gpd.GeoDataFrame | gpd.GeoSeries | None,
) -> str:
    """The report as one HTML string."""
    layers = figures.prepare_layers(buildings, vehicles, indicators_h3, roads, aoi)
    template = Template(_resource("report.html"))
    return template.substitute(
        title=escape(facts.title),
        css=_resource("report.css"),
        code_version=escape(str(facts.code_version or "")),
        subtitle=_subtitle(facts),
        key_figures=sections.key_figures(facts),
        summary=sections.summary(facts),
        fig_buildings=figures.buildings_map(layers, facts),
        fig_vehicles=figures.vehicles_map(layers, facts),
        fig_hist=figures.height_histogram(layers.buildings, facts),
        fig_h3=figures.h3_share_map(layers, facts),
        table=sections.indicator_table(indicators_city),
        method=sections.method_section(facts, layers.buildings),
        quality=sections.data_quality(facts),
        footer=_footer(facts),
    )


def _subtitle(facts: ReportFacts) -> str:
    parts = [escape(facts.sensor_name) if facts.sensor else "imagery"]
    if facts.gsd_m is not None:
        parts[0] += f", {fmt_number(facts.gsd_m)} m pixels"
    when = fmt_date(facts.acquired_at_local) or fmt_date(facts.acquired_at_utc)
    if when:
        parts.append(f"image of {when}")
    if facts.run_id:
        parts.append(f"run {escape(str(facts.run_id))}")
    return " · ".join(parts)


def _footer(facts: ReportFacts) -> str:
    version = f" {escape(str(facts.code_version))}" if facts.code_version else ""
    return (f"<p>Made by citybaseline{version}. The tables behind this report are GeoParquet files "
            "in the same folder (buildings, vehicles, indicators); <code>manifest.json</code> records "
            "the configuration, inputs and model versions of the run.</p>")


def _resource(name: str) -> str:
    return files("baseline.publish").joinpath("templates", name).read_text(encoding="utf-8")
