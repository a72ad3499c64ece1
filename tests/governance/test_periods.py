"""Budget periods start on local calendar boundaries."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from governd.governance.periods import Period, window

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def ts(text: str, tz: ZoneInfo) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("period", "at", "tz", "start", "end"),
    [
        ("hour", "2026-03-10 14:59:59", UTC, "2026-03-10 14:00", "2026-03-10 15:00"),
        ("hour", "2026-03-10 14:10", KOLKATA, "2026-03-10 14:00", "2026-03-10 15:00"),
        ("day", "2026-03-10 23:59", BERLIN, "2026-03-10 00:00", "2026-03-11 00:00"),
        ("week", "2026-03-12 09:00", UTC, "2026-03-09 00:00", "2026-03-16 00:00"),
        ("week", "2026-03-09 00:00", UTC, "2026-03-09 00:00", "2026-03-16 00:00"),
        ("month", "2026-12-31 23:00", BERLIN, "2026-12-01 00:00", "2027-01-01 00:00"),
        ("month", "2026-02-14 12:00", UTC, "2026-02-01 00:00", "2026-03-01 00:00"),
    ],
)
def test_windows(period: Period, at: str, tz: ZoneInfo, start: str, end: str) -> None:
    assert window(period, ts(at, tz), tz) == (ts(start, tz), ts(end, tz))


def test_a_day_across_a_dst_change_is_23_hours() -> None:
    start, end = window("day", ts("2026-03-29 12:00", BERLIN), BERLIN)
    assert end - start == 23 * 3600
