"""SLO counts shared through the ledger's database: replicas add, read each other, restart, prune.

Run on SQLite and on a real PostgreSQL. Each "replica" is an evaluator of its
own over one store, as two governd processes would be.
"""

from __future__ import annotations

from typing import Any

from governd.ledger.slos.evaluator import SloEvaluator
from governd.ledger.slos.store import SloStore
from governd.ledger.storage import Storage
from governd.testing.slos import call_entry, slo_config

RETENTION = {"avail": SloEvaluator([slo_config()], 0).widths("avail")}


def windows(ev: SloEvaluator) -> list[tuple[float, int, int]]:
    (status,) = ev.status("avail")
    return [(w.window, w.good, w.bad) for w in status.windows]


def share(store: SloStore, ev: SloEvaluator, now: float) -> None:
    ev.load(store.exchange(ev.drain(), RETENTION, now))
    ev.judge(now)


def test_the_widths_and_history_an_slo_keeps() -> None:
    # 1m in 1 s buckets, 10m in 10 s, 1h in 1 m: each ring as long as its longest window.
    assert RETENTION == {"avail": {1: 60, 10: 600, 60: 3600}}


def test_replicas_judge_over_each_others_counts(storage_url: str) -> None:
    store = SloStore(Storage(storage_url).engine)
    a, b = SloEvaluator([slo_config()], 0), SloEvaluator([slo_config()], 0)
    for i in range(10):
        a.observe(call_entry(100 + i / 10, 500))
        b.observe(call_entry(100 + i / 10, 200))
        b.observe(call_entry(100 + i / 10, 200))
    share(store, a, 101)  # a sees only its own so far
    assert windows(a) == [(60, 0, 10), (600, 0, 10), (3600, 0, 10)]
    share(store, b, 101)
    share(store, a, 101)
    assert windows(a) == windows(b) == [(60, 20, 10), (600, 20, 10), (3600, 20, 10)]
    # Counted twice nowhere: another exchange with nothing new changes nothing.
    share(store, b, 101)
    assert windows(b) == [(60, 20, 10), (600, 20, 10), (3600, 20, 10)]


def test_a_restarted_replica_takes_up_every_bucket_its_windows_cover(storage_url: str) -> None:
    storage = Storage(storage_url)
    store = SloStore(storage.engine)
    before = SloEvaluator([slo_config()], 0)
    for second in range(0, 3000, 7):
        before.observe(call_entry(second + 0.5, 500 if second % 3 == 0 else 200))
        if second % 70 == 0:
            share(store, before, second + 1)
    share(store, before, 3001)
    after = SloEvaluator([slo_config()], 3001)
    after.load(store.load(RETENTION, 3001))
    after.judge(3001)
    assert windows(after) == windows(before)
    assert windows(after)[2][1] + windows(after)[2][2] == len(range(0, 3000, 7))


def test_buckets_no_window_covers_are_pruned(storage_url: str) -> None:
    store = SloStore(Storage(storage_url).engine)
    ev = SloEvaluator([slo_config()], 0)
    ev.observe(call_entry(10.5))
    store.exchange(ev.drain(), RETENTION, 11)
    assert store.prune(RETENTION, 70) == 0  # the 1 s bucket at 10 is still in the minute
    assert store.prune(RETENTION, 71) == 1  # now only the 10 s and 1 m buckets cover it
    assert store.prune(RETENTION, 3700) == 2
    assert store.load(RETENTION, 3700) == []


def transition(state: str, at: float, severity: str = "page") -> tuple[Any, ...]:
    return ("avail", (("deployment", "a"),), severity, state == "fired", at)


def test_each_transition_is_claimed_by_exactly_one_replica(storage_url: str) -> None:
    store = SloStore(Storage(storage_url).engine)
    assert store.claim(*transition("resolved", 5)) is False  # nothing fired yet
    assert [store.claim(*transition("fired", 10)) for _ in range(3)] == [True, False, False]
    assert store.claim(*transition("fired", 10, "ticket")) is True  # another severity
    assert [store.claim(*transition("resolved", 20)) for _ in range(2)] == [True, False]
    assert store.claim(*transition("fired", 30)) is True  # fires again
    assert store.alerts() == [
        {
            "slo": "avail",
            "group": (("deployment", "a"),),
            "severity": "page",
            "firing": True,
            "since": 30,
        },
        {
            "slo": "avail",
            "group": (("deployment", "a"),),
            "severity": "ticket",
            "firing": True,
            "since": 10,
        },
    ]
