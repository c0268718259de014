"""The report's words: summary, indicator table, method and uncertainty, data quality.

Everything here is plain HTML built from :class:`ReportFacts`; values are escaped
and formatted by :mod:`baseline.publish.report_format`. The text adapts to what
the imagery could measure, and says so when it could not.
"""

from __future__ import annotations

from html import escape
from typing import Any

import geopandas as gpd

from baseline.publish.indicators import INDICATORS
from baseline.publish.report_facts import Measure, ReportFacts
from baseline.publish.report_format import (
    NOT_RECORDED,
    as_float,
    fmt_date,
    fmt_local_clock,
    fmt_number,
    fmt_percent,
    fmt_time,
    is_missing,
)


def _b(text: str) -> str:
    return f"<strong>{text}</strong>"


def _with_interval(measure: Measure, noun: str = "") -> str:
    """``**value noun** (best estimate E, 95% interval lo to hi)``, as much of it as is known."""
    text = _b(escape(measure.text()) + (f" {noun}" if noun else ""))
    extra = []
    est = measure.est_text()
    if est:
        extra.append(f"best estimate {escape(est)}")
    if measure.lo is not None and measure.hi is not None:
        lo, hi = (fmt_number(v, measure.kind) for v in (measure.lo, measure.hi))
        extra.append(f"95% interval {escape(lo)} to {escape(hi)}")
    return f"{text} ({', '.join(extra)})" if extra else text


def _estimate_cell(measure: Measure) -> str:
    """The table's ``estimate [lo, hi]`` text, or an em dash."""
    parts = []
    if measure.est is not None:
        parts.append(escape(measure.est_text() or measure.text()))
    interval = measure.interval_text()
    if interval:
        parts.append(f'<span class="ci">{escape(interval)}</span>')
    return " ".join(parts)


def key_figures(facts: ReportFacts) -> str:
    """The headline numbers as cards, each with its 95% interval when known."""
    cards = [
        ("Buildings", facts.measure("building_count")),
        ("Mean height", facts.measure("height_mean_m")),
        ("Vehicles seen", facts.measure("vehicles_total")),
        ("On the road", facts.measure("on_road_share")),
        ("On the road / registered cars", facts.measure("on_road_to_parc_ratio")),
    ]
    items = []
    for label, measure in cards:
        interval = measure.interval_text()
        sub = f'<div class="ci">95%: {escape(interval)}</div>' if interval else ""
        cls = "value" if measure.known else "value muted"
        items.append(f'<div class="card"><div class="label">{escape(label)}</div>'
                     f'<div class="{cls}">{escape(measure.text())}</div>{sub}</div>')
    return f'<div class="cards">{"".join(items)}</div>'


def summary(facts: ReportFacts) -> str:
    """The plain-language summary a planner reads first."""
    paragraphs = []
    when = fmt_date(facts.acquired_at_local) or fmt_date(facts.acquired_at_utc)
    clock = fmt_local_clock(facts.acquired_at_local)
    moment = f" taken on {when}" + (f" at {clock} local time" if clock else "") if when else ""
    source = escape(facts.sensor_name) if facts.sensor else "satellite or aerial imagery"
    intro = f"This report maps the baseline of {escape(facts.city)} from {source}{moment}"
    if facts.gsd_m is not None:
        intro += f" with {fmt_number(facts.gsd_m)} m pixels"
    paragraphs.append(intro + ".")

    count, mean, top = (facts.measure(c) for c in ("building_count", "height_mean_m", "height_max_m"))
    if count.known:
        text = f"It found {_with_interval(count, 'buildings')}"
        if mean.known:
            text += f", on average {_b(escape(mean.text()))} tall"
        if top.known:
            text += f"; the tallest is about {_b(escape(top.text()))}"
        paragraphs.append(text + ".")
    else:
        paragraphs.append("Single buildings are not measurable from this imagery.")

    total, on_road, parked, share = (facts.measure(c) for c in
                                     ("vehicles_total", "vehicles_on_road", "vehicles_parked", "on_road_share"))
    if total.known:
        text = f"It saw {_with_interval(total, 'vehicles')}"
        if on_road.known and parked.known:
            text += f": {_b(escape(on_road.text()))} on the road and {_b(escape(parked.text()))} parked"
        text += "."
        if share.known:
            text += (f" So {_with_interval(share)} of the vehicles seen were on the road at that moment; "
                     "the rest stood at kerbs or in car parks.")
        paragraphs.append(text)
    else:
        paragraphs.append("Vehicles are not measurable from this imagery.")
    paragraphs.append(_car_parc_sentence(facts))
    return "".join(f"<p>{p}</p>" for p in paragraphs if p)


def _car_parc_sentence(facts: ReportFacts) -> str:
    parc = facts.car_parc
    if parc.registered is None:
        return "No registered car parc is known for this city, so the on-road-to-parc ratio is not reported."
    sources = [parc.source] if parc.source else []
    if parc.year and str(parc.year) not in (parc.source or ""):
        sources.append(str(parc.year))
    origin = ", ".join(escape(x) for x in sources)
    text = f"{escape(facts.city)} has {_b(fmt_number(parc.registered, 'count'))} registered cars"
    text += f" ({origin})" if origin else ""
    text += "."
    ratio = facts.measure("on_road_to_parc_ratio")
    if ratio.known:
        text += (f" The vehicles on the road in the mapped area were {_with_interval(ratio)} of that car parc: "
                 "roads are planned for the cars that move, not for every car registered.")
    if parc.illustrative:
        text += (' <span class="flag">Illustrative figure</span> The car parc figure is illustrative; '
                 "do not quote the ratio as a statement about the city.")
    return text


def indicator_table(indicators_city: gpd.GeoDataFrame) -> str:
    """The city indicators as ``value [lo, hi]``, in plain words, with id ``tbl-indicators``."""
    row: dict[str, Any] = indicators_city.iloc[0].to_dict() if len(indicators_city) else {}
    rows = []
    for ind in INDICATORS:
        if ind.column not in row:
            continue
        measure = Measure(ind.column, *(as_float(row.get(f"{ind.column}{s}")) for s in ("", "_lo", "_hi", "_est")))
        cls = "num" if measure.known else "num muted"
        rows.append(f"<tr><th scope=\"row\">{escape(ind.label)}<div class=\"col\">{ind.column}</div></th>"
                    f"<td class=\"{cls}\">{escape(measure.text())}</td>"
                    f"<td class=\"num\">{_estimate_cell(measure)}</td></tr>")
    if not rows:
        return '<p id="tbl-indicators" class="muted">The run produced no city indicators.</p>'
    return ('<table id="tbl-indicators" class="indicators"><thead><tr><th scope="col">Indicator</th>'
            '<th scope="col" class="num">Measured</th>'
            '<th scope="col" class="num">Best estimate [95% interval]</th>'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def method_section(facts: ReportFacts, buildings: gpd.GeoDataFrame) -> str:
    """What the imagery can and cannot measure, where the intervals come from, the privacy rule."""
    parts = ["<h3>What the imagery can measure</h3><p>", _resolution_text(facts)]
    parts.append(" An image is one instant: the counts describe that moment, not a daily average, "
                 "and vehicles under trees, bridges or deep shadow are not seen.</p>")
    parts.append(_height_sources(buildings))
    parts.append("<h3>How sure the numbers are</h3><p>No detector is perfect: it misses some objects and mistakes "
                 "a few other things for them. Each detector was measured on labelled images, which gives its "
                 "<em>precision</em> (the share of its detections that are real) and its <em>recall</em> (the "
                 "share of real objects it finds). Counts are corrected with these rates, and each count and "
                 "share is given with a <em>95% interval</em>: the range that holds the true value 19 times "
                 "out of 20, allowing for how well the rates were measured and for chance.</p>")
    rates = _model_rates(facts.models)
    if rates:
        parts.append(f"<ul class=\"rates\">{rates}</ul>")
    parts.append("<h3>On the road or parked</h3><p>A vehicle counts as <em>on the road</em> when it stands inside "
                 "a carriageway of the road map (moving or queuing), and as <em>parked</em> when it stands at a "
                 "kerb or in a car park.")
    if facts.car_parc.registered is not None:
        parts.append(" The <em>car parc</em> is the number of cars registered in the city, from the source named "
                     "above; comparing it with the cars on the road shows how few of them use the roads at once.")
    parts.append("</p>")
    threshold = facts.privacy_min_vehicles
    rule = f"fewer than {threshold} vehicles" if threshold else "too few vehicles"
    parts.append(f"<h3>Privacy</h3><p>Vehicle figures are published only for areas with enough vehicles that no "
                 f"single vehicle can be picked out: hexagonal cells with {rule} show no vehicle numbers "
                 f"(hatched on the map), and published tables hold no identities, only positions and classes.</p>")
    return "".join(parts)


def _resolution_text(facts: ReportFacts) -> str:
    """What one pixel of this imagery is, and what can be seen at that size."""
    if facts.gsd_m is None:
        return "The run did not record the pixel size of the imagery, so what it can resolve is not stated here."
    caps = facts.capabilities
    text = (f"The image is {escape(facts.sensor_name)} with {fmt_number(facts.gsd_m)} m pixels: "
            "one pixel covers that distance on the ground. ")
    if caps.cars:
        return text + ("At this resolution single buildings and single cars are visible. Footprints are traced "
                       "from the image; heights come from the length of the shadows that buildings cast, "
                       "given the sun's position at the time of the image, or from a learned estimate where "
                       "shadows are hidden.")
    if caps.single_buildings:
        return text + "At this resolution buildings are visible, but single cars are not."
    if caps.large_moving_only:
        return text + ("At this resolution single buildings and cars are not visible; only the share of built-up "
                       "ground and large moving vehicles (which appear as coloured streaks) can be measured.")
    return text + "At this resolution only the share of built-up ground can be measured; vehicles are not visible."


def _height_sources(buildings: gpd.GeoDataFrame) -> str:
    if "height_source" not in buildings.columns or not len(buildings):
        return ""
    counts = buildings["height_source"].fillna("unknown").value_counts()
    names = {"shadow": "measured from shadows", "learned": "estimated by a learned model",
             "dsm": "taken from a surface model", "prior": "assumed from typical heights (least certain)",
             "unknown": "of unknown origin"}
    items = ", ".join(f"{int(n):,} {escape(names.get(str(s), str(s)))}" for s, n in counts.items())
    text = f"<p>Building heights: {items}."
    if "height_sigma_m" in buildings.columns:
        sigma = buildings["height_sigma_m"].dropna()
        if len(sigma):
            text += f" A single building's height is typically uncertain by about ±{float(sigma.median()):.1f} m."
    return text + "</p>"


def _model_rates(models: list[dict[str, Any]]) -> str:
    items = []
    for model in models:
        precision, recall = as_float(model.get("precision")), as_float(model.get("recall"))
        if precision is None and recall is None:
            continue
        name = escape(" ".join(str(model[k]) for k in ("name", "version") if model.get(k)))
        rates = []
        if precision is not None:
            rates.append(f"precision {fmt_percent(precision)}")
        if recall is not None:
            rates.append(f"recall {fmt_percent(recall)}")
        items.append(f"<li><strong>{name}</strong>: {', '.join(rates)}</li>")
    return "".join(items)


def data_quality(facts: ReportFacts) -> str:
    """Sensor, time, usable area, models and run identifiers as a definition table."""
    valid = facts.measure("valid_fraction")
    rows: list[tuple[str, str]] = [
        ("Sensor", escape(facts.sensor_name) if facts.sensor else NOT_RECORDED),
        ("Pixel size (GSD)", f"{fmt_number(facts.gsd_m)} m" if facts.gsd_m is not None else NOT_RECORDED),
        ("Acquired (UTC)", escape(fmt_time(facts.acquired_at_utc, utc=True))
         if not is_missing(facts.acquired_at_utc) else NOT_RECORDED),
        ("Acquired (local time)", escape(fmt_time(facts.acquired_at_local, utc=False))
         + (f" {escape(facts.timezone)}" if facts.timezone else "")
         if not is_missing(facts.acquired_at_local) else NOT_RECORDED),
        ("Usable image area", escape(valid.text()) + " of the mapped area (cloud-free and inside the image)"
         if valid.known else NOT_RECORDED),
        ("Models", _model_list(facts.models)),
    ]
    if facts.scene_ids:
        rows.append(("Scenes", ", ".join(f"<code>{escape(s)}</code>" for s in facts.scene_ids)))
    if facts.car_parc.note:
        rows.append(("Car parc note", escape(facts.car_parc.note)))
    if facts.notes:
        rows.append(("Notes", "<br>".join(escape(n) for n in facts.notes)))
    for label, value in (("Run", facts.run_id), ("Config hash", facts.config_hash),
                         ("Code version", facts.code_version)):
        if not is_missing(value):
            rows.append((label, f"<code>{escape(str(value))}</code>"))
    body = "".join(f"<tr><th scope=\"row\">{label}</th><td>{value}</td></tr>" for label, value in rows)
    return f'<table id="tbl-quality" class="quality"><tbody>{body}</tbody></table>'


def _model_list(models: list[dict[str, Any]]) -> str:
    if not models:
        return NOT_RECORDED
    items = []
    for model in models:
        name = escape(str(model.get("name", "unnamed model")))
        version = f" <code>{escape(str(model['version']))}</code>" if model.get("version") else ""
        task = f" ({escape(str(model['task']))})" if model.get("task") else ""
        items.append(f"{name}{version}{task}")
    return "<br>".join(items)
