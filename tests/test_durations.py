"""Durations and points in time as people write them."""

from __future__ import annotations

import pytest

from governd.durations import parse_duration, parse_since


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("30d", 2592000),
        ("1w", 604800),
        ("0.5s", 0.5),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1h", "0", "5y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "ts"),
    [("15m", 10_000 - 900), ("1700000000", 1_700_000_000), ("2023-11-14T22:13:20Z", 1_700_000_000)],
)
def test_since(text: str, ts: float) -> None:
    assert parse_since(text, now=10_000) == ts


@pytest.mark.parametrize("text", ["yesterday", "2023-11-14T22:13:20"])
def test_bad_since(text: str) -> None:
    with pytest.raises(ValueError):
        parse_since(text, now=0)
