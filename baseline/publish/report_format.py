"""Number, interval and time formatting for the planner's report.

One place decides how a count, a share or a height reads, so the summary, the
figures and the indicator table agree. Missing values read as "not measurable":
the report never invents a number the imagery cannot support.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pandas as pd

NOT_MEASURABLE = "not measurable"  # the imagery could not support the value
NOT_RECORDED = "not recorded"  # the run did not say (metadata)


def is_missing(value: Any) -> bool:
    """True for None, NaN, NaT and pandas' NA."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def as_float(value: Any) -> float | None:
    """``value`` as a finite float, or None when missing or not a number."""
    if is_missing(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def fmt_number(value: Any, kind: str = "number") -> str:
    """Format one value of an indicator ``kind`` (see :class:`Indicator`)."""
    number = as_float(value)
    if number is None:
        return NOT_MEASURABLE
    if kind == "count":
        return f"{round(number):,}"
    if kind == "ratio":
        return fmt_percent(number)
    if kind == "length":
        return f"{number:,.1f} m"
    if kind == "area":
        return f"{number / 1e6:,.3f} km²" if number >= 1e6 else f"{number:,.0f} m²"
    if kind == "volume":
        return f"{number / 1e6:,.2f} million m³" if number >= 1e6 else f"{number:,.0f} m³"
    if kind == "km":
        return f"{number:,.1f} km"
    if kind == "per_km":
        return f"{number:,.1f} per lane-km"
    return f"{number:,.3g}"


def fmt_percent(share: float) -> str:
    """A share (0 to 1) as a percent with as many decimals as it needs to not read 0%."""
    percent = share * 100.0
    if percent == 0 or abs(percent) >= 10:
        return f"{percent:.0f}%"
    if abs(percent) >= 1:
        return f"{percent:.1f}%"
    if abs(percent) >= 0.1:
        return f"{percent:.2f}%"
    return f"{percent:.3f}%"


def fmt_interval(lo: Any, hi: Any, kind: str) -> str | None:
    """``[lo, hi]`` formatted like its value, or None when either end is missing."""
    if as_float(lo) is None or as_float(hi) is None:
        return None
    return f"[{fmt_number(lo, kind)}, {fmt_number(hi, kind)}]"


def fmt_time(value: Any, *, utc: bool) -> str:
    """An acquisition instant for people: ``2024-06-12 09:31 UTC`` or local with its offset."""
    if is_missing(value):
        return NOT_MEASURABLE
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    if utc:
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%d %H:%M UTC")
    text = stamp.strftime("%Y-%m-%d %H:%M")
    if stamp.tzinfo is not None:
        offset = stamp.strftime("%z")
        text += f" (UTC{offset[:3]}:{offset[3:]})"
    return text


def fmt_date(value: Any) -> str | None:
    """The calendar date of an instant, like ``12 June 2024``; None if missing."""
    if is_missing(value):
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    moment: datetime = stamp.to_pydatetime()
    return f"{moment.day} {moment:%B %Y}"


def fmt_local_clock(value: Any) -> str | None:
    """The local clock time of an instant, like ``12:31``; None if missing."""
    if is_missing(value):
        return None
    try:
        return pd.Timestamp(value).strftime("%H:%M")
    except (TypeError, ValueError):
        return None
