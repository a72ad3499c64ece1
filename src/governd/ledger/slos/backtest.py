"""Replay recorded outcomes through the SLO evaluator, to tune objectives on last month.

Events are ledger entries (the SLOs' indicators classify them) or counts read
from JSONL, one object per line: ``{"ts": epoch seconds or RFC 3339, "good":
N, "bad": M}`` -- one event, or the counts of a bucket that ends at ``ts``
(either way they are counted 1 ms before ``ts``, inside that bucket). Time advances with the events, ticking the
evaluator at every interval it asks for, so an alert fires and resolves at
the tick it would have in the server. The replay ends with one tick after the
last event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governd.config.slos import SloConfig
from governd.ledger.entries import FIELDS, LedgerEntry
from governd.ledger.slos.evaluator import SloEvaluator, Transition
from governd.ledger.tables import entries_named

T = TypeVar("T")
#: Runs after each tick of a replay: (evaluator, now) -> what to yield beside the transitions.
AfterTick = Callable[[SloEvaluator, float], Iterable[T]]
_PAGE = 10_000
#: How far before ``ts`` a JSONL line's counts are placed: inside the bucket that ends at ``ts``.
_BEFORE_END = 1e-3


@dataclass(frozen=True, slots=True)
class Counted:
    """Recorded counts of one SLO's events at ``ts``."""

    ts: float
    good: int
    bad: int


def replay(
    slos: list[SloConfig],
    events: Iterable[LedgerEntry | Counted],
    after_tick: AfterTick[T] | None = None,
) -> Iterator[Transition | T]:
    """Every alert transition the SLOs would have made over ``events`` (in time order).

    ``Counted`` events count in each SLO given (give one SLO for them).
    ``after_tick(evaluator, now)`` runs after every tick and what it returns is
    yielded too (the error-budget policies' steps).
    """
    stream = iter(events)
    first = next(stream, None)
    if first is None:
        return
    evaluator = SloEvaluator(slos, first.ts)
    interval = evaluator.interval

    def tick(now: float) -> Iterator[Transition | T]:
        yield from evaluator.tick(now)
        if after_tick is not None:
            yield from after_tick(evaluator, now)

    at = (math.floor(first.ts / interval) + 1) * interval
    for event in chain([first], stream):
        while at <= event.ts:
            yield from tick(at)
            at += interval
        if isinstance(event, Counted):
            for name in evaluator.names:
                evaluator.add(name, event.ts, event.good, event.bad)
        else:
            evaluator.observe(event)
    yield from tick(at)


def ledger_entries(engine: Engine, since: float | None = None) -> Iterator[LedgerEntry]:
    """The ledger's entries in append order (from ``since``), read a page at a time."""
    c = entries_named.c
    after = 0
    while True:
        q = sa.select(entries_named).where(c.seq > after)
        if since is not None:
            q = q.where(c.ts >= since)
        with engine.connect() as conn:
            rows = conn.execute(q.order_by(c.seq).limit(_PAGE)).mappings().all()
        if not rows:
            return
        for row in rows:
            yield LedgerEntry(**{name: row[name] for name in FIELDS})
        after = rows[-1]["seq"]


def read_counts(lines: Iterable[bytes | str]) -> Iterator[Counted]:
    """Counts from JSONL lines; ``ValueError`` naming the line and what is wrong with it."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield _counted(orjson.loads(line))
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise ValueError(f"line {number}: {exc}") from None


def _counted(data: object) -> Counted:
    if not isinstance(data, dict):
        raise ValueError('expected an object like {"ts": ..., "good": 1, "bad": 0}')
    unknown = set(data) - {"ts", "good", "bad"}
    if unknown:
        raise ValueError(f"unknown field {sorted(unknown)[0]!r} (fields: ts, good, bad)")
    if "ts" not in data:
        raise ValueError("missing ts")
    counts = [data.get(name, 0) for name in ("good", "bad")]
    for name, value in zip(("good", "bad"), counts, strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a count (a whole number >= 0), not {value!r}")
    if not any(counts):
        raise ValueError("give good or bad (or both)")
    return Counted(_time(data["ts"]) - _BEFORE_END, *counts)


def _time(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"ts must be epoch seconds or RFC 3339, not {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if stamp.tzinfo is not None:
                return stamp.timestamp()
            raise ValueError(f"ts {value!r} needs a timezone (e.g. Z)")
    raise ValueError(f"ts must be epoch seconds or RFC 3339, not {value!r}")
