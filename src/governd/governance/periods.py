"""Calendar periods (hour, day, week, month) aligned to a timezone, as epoch-second windows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["hour", "day", "week", "month"]


def window(period: Period, ts: float, tz: ZoneInfo) -> tuple[float, float]:
    """The ``[start, end)`` of the period containing ``ts``, in epoch seconds.

    Boundaries are wall-clock boundaries in ``tz`` (a day starts at local
    midnight, a week on Monday, a month on the 1st), so a day across a DST
    change is 23 or 25 hours long.
    """
    local = datetime.fromtimestamp(ts, tz)
    if period == "hour":
        hour = local.replace(minute=0, second=0, microsecond=0).timestamp()
        return hour, hour + 3600
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    if period == "day":
        begin, end_naive = day, day + timedelta(days=1)
    elif period == "week":
        begin = day - timedelta(days=day.weekday())
        end_naive = begin + timedelta(days=7)
    else:
        begin = day.replace(day=1)
        end_naive = (begin + timedelta(days=32)).replace(day=1)
    start = begin.replace(tzinfo=tz)
    end = end_naive.replace(tzinfo=tz)
    return start.timestamp(), end.timestamp()
