"""During an outage a failing loop logs one line per cause, not a traceback per retry."""

from __future__ import annotations

import logging
import sys

import pytest

from governd.errors import StateUnavailable, StorageUnavailable
from governd.observe.outages import OutageFilter


def record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("governd.x", logging.WARNING, __file__, 1, "tick failed", (), info)


@pytest.mark.parametrize("exc", [StorageUnavailable("db down"), StateUnavailable("redis down")])
def test_an_outage_is_one_line_then_quiet(exc: BaseException) -> None:
    quiet = OutageFilter()
    first = record(exc)
    assert quiet.filter(first)
    assert first.getMessage() == f"tick failed: {exc}" and first.exc_info is None
    assert not quiet.filter(record(exc)), "the same line again within 30 s"


def test_the_same_line_comes_back_once_its_interval_passed() -> None:
    eager = OutageFilter(every_s=0.0)
    assert eager.filter(record(StorageUnavailable("db down")))
    assert eager.filter(record(StorageUnavailable("db down")))


def test_other_errors_keep_their_traceback() -> None:
    quiet = OutageFilter()
    bug = record(KeyError("x"))
    assert quiet.filter(bug) and quiet.filter(record(KeyError("x")))
    assert bug.exc_info is not None
