"""Backtests over synthetic series whose alert times are derived by hand."""

from __future__ import annotations

import pytest

from governd.config.slos import SloConfig
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.backtest import Counted, read_counts, replay

#: 99% over 30 days, the Workbook's four pairs (page 1h/5m at 14.4 and 6h/30m at 6; ticket
#: 1d/2h at 3 and 3d/6h at 1).
AVAIL = SloConfig(name="avail", objective=99, sli="availability")


def outage_series() -> list[Counted]:
    """1,000 calls a minute for 10 hours, all failing in minutes 180-189 (3:00 to 3:10).

    Each minute is one line at the minute's end, counted in that minute.
    """
    return [
        Counted(60 * (m + 1) - 1e-3, 0 if 180 <= m < 190 else 1000, 1000 if 180 <= m < 190 else 0)
        for m in range(600)
    ]


def test_an_outage_of_ten_minutes_raises_a_ticket_then_a_page_and_both_resolve() -> None:
    """The hand count (k: failed minutes seen at the tick at the end of minute 179 + k).

    - ticket, 3d/6h at 1: both windows hold everything since 0:00, so they burn at
      100 * k / (180 + k): above 1 from k = 2 -> fired at 3:02:00 (10920 s).
    - page, 1h/5m at 14.4: the hour holds minutes m-58..m (59,000 calls), burning
      100 * k / 59 = 1.69 k: above 14.4 from k = 9; the 5m window then holds 5 failed
      minutes of 5 -> fired at 3:09:00 (11340 s). The 6h/30m pair never does: at most
      10,000 of 190,000 calls, a burn of 5.3 < 6.
    - page resolved when the 5m window (60 buckets of 5 s) no longer holds minute 189's
      line (at 11399.999): the first tick with T - 295 > 11399.999 is 11695 (3:14:55).
    - ticket resolved when the 6h window (72 buckets of 5m) drops 5m-bucket 37 (minutes
      185-189): bucket 109 starts at 32700 (9:05:00). Until then it holds at least 5,000
      failed calls of 360,000, a burn above 1; the 1d/2h pair stopped at 5:06 already.
    """
    out = list(replay([AVAIL], outage_series()))
    assert [(t.severity, t.state, t.at) for t in out] == [
        ("ticket", "fired", 10920),
        ("page", "fired", 11340),
        ("page", "resolved", 11695),
        ("ticket", "resolved", 32700),
    ]
    page = out[1]
    hour = next(w for w in page.windows if w.window == 3600)
    assert (hour.good, hour.bad) == (50_000, 9_000)


def test_ledger_entries_replay_through_the_indicator_as_their_counts_do() -> None:
    """The outage above as entries, 100 a minute (the burn rates depend on ratios only)."""
    entries = [
        LedgerEntry(
            id="e",
            ts=c.ts,
            kind="model_call",
            operation="chat",
            principal="acme",
            status=500 if c.bad else 200,
        )
        for c in outage_series()
        for _ in range(100)
    ]
    expected = [(t.severity, t.state, t.at) for t in replay([AVAIL], outage_series())]
    assert [(t.severity, t.state, t.at) for t in replay([AVAIL], entries)] == expected


def test_nothing_to_replay_is_no_transition() -> None:
    assert list(replay([AVAIL], [])) == []


def test_jsonl_counts_take_epoch_seconds_or_rfc3339() -> None:
    lines = [b'{"ts": 60, "good": 5}', b"", b'{"ts": "1970-01-01T00:02:00Z", "bad": 1, "good": 2}']
    assert list(read_counts(lines)) == [Counted(60 - 1e-3, 5, 0), Counted(120 - 1e-3, 2, 1)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"{", "line 1: "),
        (b"[1]", "line 1: expected an object"),
        (b'{"good": 1}', "line 1: missing ts"),
        (b'{"ts": 1, "good": -1}', "line 1: good must be a count"),
        (b'{"ts": 1, "bad": 1.5}', "line 1: bad must be a count"),
        (b'{"ts": 1}', "line 1: give good or bad"),
        (b'{"ts": 1, "good": 1, "oops": 2}', "line 1: unknown field 'oops'"),
        (b'{"ts": "2026-01-01T00:00:00", "good": 1}', "needs a timezone"),
        (b'{"ts": "yesterday", "good": 1}', "ts must be epoch seconds or RFC 3339"),
        (b'{"ts": true, "good": 1}', "ts must be epoch seconds or RFC 3339"),
    ],
)
def test_a_bad_line_is_named_with_what_is_wrong(line: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        list(read_counts([line]))
