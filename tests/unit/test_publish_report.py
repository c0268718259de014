"""write_report: a self-contained page with the planner's facts, that degrades instead of failing."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from baseline.publish import write_report, write_report_pdf
from baseline.publish.report_format import fmt_interval, fmt_number, fmt_percent, fmt_time

FIGURE_IDS = ("fig-buildings-map", "fig-vehicles-map", "fig-height-hist", "fig-h3-share")


def _report(sample, out_dir, **overrides) -> str:
    kwargs = dict(buildings=sample.buildings, vehicles=sample.vehicles, indicators_city=sample.indicators_city,
                  indicators_h3=sample.indicators_h3, roads=sample.roads, aoi=sample.aoi, context=sample.context)
    kwargs.update(overrides)
    path = write_report(out_dir, **kwargs)
    assert path == out_dir / "report.html"
    return path.read_text(encoding="utf-8")


def _figure(html: str, fig_id: str) -> str:
    match = re.search(rf'<figure id="{fig_id}".*?</figure>', html, flags=re.DOTALL)
    assert match, f"no figure {fig_id}"
    return match.group(0)


def _text(html: str) -> str:
    """Visible text, roughly: tags dropped, whitespace collapsed, entities for < > & decoded."""
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", html))
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def test_report_is_self_contained(publish_sample, tmp_path):
    html = _report(publish_sample, tmp_path)
    assert "<script" not in html.lower()
    # every src/href is a data URI or an in-page anchor; nothing reaches out
    for attr, value in re.findall(r'\b(src|href)\s*=\s*"([^"]*)"', html):
        assert value.startswith(("data:", "#")), (attr, value[:60])
    without_data = re.sub(r'"data:[^"]+"', '""', html)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", without_data, flags=re.I), "external URL"
    assert "@import" not in html and "url(" not in without_data
    assert "default-src 'none'" in html  # the browser enforces it too


def test_every_figure_is_an_embedded_svg(publish_sample, tmp_path):
    html = _report(publish_sample, tmp_path)
    for fig_id in FIGURE_IDS:
        block = _figure(html, fig_id)
        data = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', block)
        assert data, fig_id
        svg = base64.b64decode(data.group(1)).decode("utf-8")
        assert "<svg" in svg and "<path" in svg
        assert not re.search(r'(xlink:)?href="(?!#|data:)', svg), "an SVG that loads something"
        assert re.search(r'alt="[^"]{10,}"', block), "figures need alt text"
    assert 'id="tbl-indicators"' in html


def test_summary_states_the_headline_numbers(publish_sample, tmp_path):
    text = _text(_report(publish_sample, tmp_path))
    city = publish_sample.indicators_city.iloc[0]
    n_on, n_total = int(city["vehicles_on_road"]), int(city["vehicles_total"])
    assert f"{int(city['building_count'])} buildings" in text
    assert f"{city['height_mean_m']:.1f} m" in text and f"{city['height_max_m']:.1f} m" in text
    assert f"{n_total} vehicles" in text
    assert f"{n_on} on the road and {n_total - n_on} parked" in text
    share = fmt_percent(city["on_road_share"])
    lo, hi = fmt_percent(city["on_road_share_lo"]), fmt_percent(city["on_road_share_hi"])
    assert f"{share} (95% interval {lo} to {hi})" in text
    assert "240,000 registered cars" in text and "Traficom" in text
    assert "Illustrative figure" in text
    assert fmt_percent(city["on_road_to_parc_ratio"]) in text


def test_indicator_table_gives_value_and_interval(publish_sample, tmp_path):
    html = _report(publish_sample, tmp_path)
    table = re.search(r'<table id="tbl-indicators".*?</table>', html, flags=re.DOTALL).group(0)
    city = publish_sample.indicators_city.iloc[0]
    row = re.search(r"on_road_share</div></th>(.*?)</tr>", table, flags=re.DOTALL).group(1)
    assert fmt_percent(city["on_road_share"]) in row
    assert f"[{fmt_percent(city['on_road_share_lo'])}, {fmt_percent(city['on_road_share_hi'])}]" in row
    vehicles = re.search(r"vehicles_total</div></th>(.*?)</tr>", table, flags=re.DOTALL).group(1)
    assert f"{round(city['vehicles_total_est']):,} " in _text(vehicles)
    assert len(re.findall(r"<tr>", table)) >= 20


def test_method_and_quality_sections_say_what_a_planner_needs(publish_sample, tmp_path):
    text = _text(_report(publish_sample, tmp_path))
    method = text[text.index("Method and uncertainty", text.index("Indicators Every")):]
    assert "0.3 m pixels" in method
    assert "precision" in method and "recall" in method and "95% interval" in method
    assert "vehicles-centernet 1.0 : precision 93%, recall 86%" in method
    assert "fewer than 5 vehicles" in method
    quality = text[text.index("Data quality Sensor"):]
    assert "2024-06-14 09:30 UTC" in quality
    assert "2024-06-14 12:30 (UTC+03:00) Europe/Helsinki" in quality
    assert "97% of the mapped area" in quality
    assert "buildings-unet 1.0" in quality
    assert "withheld (<5 vehicles)" in text


def test_report_is_deterministic(publish_sample, tmp_path):
    first = _report(publish_sample, tmp_path / "a")
    second = _report(publish_sample, tmp_path / "b")
    assert first == second


def test_missing_optional_columns_degrade_to_words(publish_sample, tmp_path):
    sample = publish_sample
    city = sample.indicators_city[["city", "geometry"]]
    html = _report(
        sample, tmp_path,
        buildings=sample.buildings.drop(columns=["height_m", "height_source", "height_sigma_m"]),
        vehicles=sample.vehicles.drop(columns=["on_road"]),
        indicators_city=city,
        indicators_h3=sample.indicators_h3[["h3_cell", "geometry"]],
        roads=None, aoi=None, context={},
    )
    for fig_id in ("fig-buildings-map", "fig-vehicles-map", "fig-height-hist", "fig-h3-share"):
        assert "not measurable" in _figure(html, fig_id), fig_id
        assert "data:image" not in _figure(html, fig_id)
    text = _text(html)
    assert f"It found {len(sample.buildings)} buildings" in text  # counted from the table instead
    assert "No registered car parc is known" in text


def test_values_the_imagery_cannot_support_read_not_measurable(publish_sample, tmp_path):
    """Sentinel-2: aggregate leaves counts empty; the report must not count the tables instead."""
    city = publish_sample.indicators_city.copy()
    vehicle_columns = [c for c in city.columns if c.startswith(("vehicles_", "on_road", "building_count"))
                       and c != "vehicles_withheld"]
    city[vehicle_columns] = np.nan
    city[["sensor", "gsd_m"]] = ["sentinel-2-l2a", 10.0]
    html = _report(publish_sample, tmp_path, indicators_city=city)
    text = _text(html)
    assert "Single buildings are not measurable from this imagery" in text
    assert "Vehicles are not measurable from this imagery" in text
    assert "Single buildings are not measurable from this imagery (Sentinel-2 L2A, 10 m pixels)" in _text(
        _figure(html, "fig-buildings-map"))
    table = re.search(r'<table id="tbl-indicators".*?</table>', html, flags=re.DOTALL).group(0)
    assert _text(re.search(r"vehicles_total</div></th>(.*?)</tr>", table, re.DOTALL).group(1)) == "not measurable"


def test_pdf_is_skipped_quietly_without_chromium(publish_sample, tmp_path, monkeypatch, caplog):
    path = tmp_path / "report.html"
    path.write_text("<html></html>")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    monkeypatch.delenv("CITYBASELINE_CHROMIUM", raising=False)
    assert write_report_pdf(path) is None
    assert "no Chromium" in caplog.text
    assert write_report_pdf(path, chromium=str(tmp_path / "no-such-browser")) is None
    assert not (tmp_path / "report.pdf").exists()


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [(1234.4, "count", "1,234"), (0.5734, "ratio", "57%"), (0.00038, "ratio", "0.038%"),
     (0.052, "ratio", "5.2%"), (19.14, "length", "19.1 m"), (2.37e6, "volume", "2.37 million m³"),
     (float("nan"), "count", "not measurable"), (None, "ratio", "not measurable")],
)
def test_number_formats(value, kind, text):
    assert fmt_number(value, kind) == text


def test_interval_and_time_formats():
    assert fmt_interval(0.51, 0.62, "ratio") == "[51%, 62%]"
    assert fmt_interval(None, 0.62, "ratio") is None
    assert fmt_time("2024-06-14T12:30:00+03:00", utc=True) == "2024-06-14 09:30 UTC"
    assert fmt_time("2024-06-14T12:30:00+03:00", utc=False) == "2024-06-14 12:30 (UTC+03:00)"
    assert fmt_time(None, utc=True) == "not measurable"


def test_very_many_shapes_are_embedded_as_a_raster_inside_the_svg(publish_sample, tmp_path, monkeypatch):
    import baseline.publish.report_plot as plot

    monkeypatch.setattr(plot, "RASTERIZE_ABOVE", 50)  # the sample has about 110 buildings
    html = _report(publish_sample, tmp_path)
    data = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', _figure(html, "fig-buildings-map")).group(1)
    svg = base64.b64decode(data).decode("utf-8")
    assert '<image' in svg and "data:image/png;base64," in svg
