"""Which acquisitions a city's selection window keeps: local weekdays and hours.

On-road counts depend on the hour and the day, so the windows are read in
the city's own time zone, never in UTC. Shared by every remote source.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def in_local_window(when: datetime, tz: ZoneInfo, weekdays: list[str] | None,
                    hours: tuple[int, int] | None) -> tuple[bool, bool]:
    """(weekday kept, hour kept) for ``when`` seen in ``tz``; hours ``(a, b)`` with a > b wrap past midnight."""
    local = when.astimezone(tz)
    day_ok = weekdays is None or local.strftime("%a").lower() in weekdays
    if hours is None:
        return day_ok, True
    a, b = hours
    hour_ok = (a <= local.hour < b) if a <= b else (local.hour >= a or local.hour < b)
    return day_ok, hour_ok
