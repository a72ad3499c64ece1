"""Rolling windows in buckets: what a window holds at each moment, counted by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governd.ledger.slos.windows import Counts, span_of, width_of


@pytest.mark.parametrize(
    ("window", "width", "span"),
    [
        (300, 5, 60),  # 5m
        (3600, 60, 60),  # 1h
        (21600, 300, 72),  # 6h
        (86400, 600, 144),  # 1d
        (30 * 86400, 21600, 120),  # 30d
        (10, 1, 10),  # shorter than 60 buckets of the finest width: 1 s buckets
        (7, 1, 7),
    ],
)
def test_each_window_has_its_width(window: float, width: int, span: int) -> None:
    assert (width_of(window), span_of(window)) == (width, span)


def test_a_window_holds_the_buckets_of_its_length_the_current_one_included() -> None:
    counts = Counts([60])  # 60 buckets of 1 s
    counts.add(0.5, 1, 0)
    counts.add(30.2, 0, 2)
    counts.advance(59.9)
    assert counts.window(60) == (1, 2)
    counts.advance(60.0)  # bucket 0 leaves: the window is (0, 60]
    assert counts.window(60) == (0, 2)
    counts.add(60.5, 4, 0)
    assert counts.window(60) == (4, 2)
    counts.advance(90.0)  # bucket 30 left at 90
    assert counts.window(60) == (4, 0)


def test_windows_of_one_width_share_a_ring_and_keep_their_own_sums() -> None:
    counts = Counts([10, 60])
    for second in range(60):
        counts.add(second, 1, second % 2)
    assert counts.window(10) == (10, 5)
    assert counts.window(60) == (60, 30)


def test_a_long_silence_empties_every_window() -> None:
    counts = Counts([300, 3600, 86400])
    counts.add(100, 5, 5)
    counts.advance(100 + 2 * 86400)
    assert [counts.window(w) for w in (300, 3600, 86400)] == [(0, 0)] * 3


def test_a_late_event_lands_in_its_bucket_if_a_window_still_holds_it() -> None:
    counts = Counts([10, 60])
    counts.advance(30)
    counts.add(25, 1, 0)  # within both windows
    counts.add(5, 0, 1)  # only within the minute
    counts.add(-100, 7, 7)  # older than any window: counted nowhere
    assert counts.window(10) == (1, 0)
    assert counts.window(60) == (1, 1)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.floats(0, 2000), st.integers(0, 3), st.integers(0, 3)), max_size=60
    ),
    window=st.sampled_from([10, 60, 300, 600]),
)
def test_a_window_counts_exactly_the_events_of_its_buckets(
    events: list[tuple[float, int, int]], window: int
) -> None:
    counts = Counts([window])
    width, span = width_of(window), span_of(window)
    events.sort()
    for ts, good, bad in events:
        counts.add(ts, good, bad)
    now = 2000.0
    counts.advance(now)
    newest = int(now // width)
    inside = [(g, b) for ts, g, b in events if newest - span < int(ts // width) <= newest]
    assert counts.window(window) == (sum(g for g, _ in inside), sum(b for _, b in inside))
