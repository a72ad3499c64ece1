"""SLO alerts in the server: two replicas over one store record each transition once and send it.

The SLO is ``governd.testing.slos``'s (factor 3 over a 10m/1m pair). Time is a
``ManualClock``; the store is a real SQLite database; webhooks and the
Alertmanager API are a real HTTP server on loopback.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from governd.clock import ManualClock
from governd.config.slos import AlertsConfig
from governd.controllers.slo_alerts import SloAlerts
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.evaluator import SloEvaluator
from governd.ledger.slos.store import SloStore
from governd.ledger.storage import Storage
from governd.observe.alerts import AlertSender, rfc3339
from governd.testing.receiver import Receiver
from governd.testing.slos import call_entry, slo_config


class Replica:
    """One replica's SLO alerts, and the entries it appended."""

    def __init__(self, store: SloStore, clock: ManualClock, sender: AlertSender) -> None:
        self.entries: list[LedgerEntry] = []

        async def append(entry: LedgerEntry) -> None:
            self.entries.append(entry)

        self.alerts = SloAlerts(
            SloEvaluator([slo_config()], clock.now()), store, append, sender, clock
        )


async def test_two_replicas_record_each_transition_once_and_send_it(tmp_path: Path) -> None:
    clock = ManualClock(start=0)
    store = SloStore(Storage(f"sqlite:///{tmp_path / 'l.db'}").engine)
    async with Receiver() as far:
        cfg = AlertsConfig(alertmanagers=[far.url], webhooks=[f"{far.url}/hook"], resend_s=30)
        a, b = Replica(store, clock, AlertSender(cfg)), Replica(store, clock, AlertSender(cfg))
        for second in range(300):
            clock.advance(1)
            # Each replica serves half the calls; from 100 s on, all of b's fail.
            a.alerts.evaluator.observe(call_entry(clock.now() - 0.5))
            b.alerts.evaluator.observe(call_entry(clock.now() - 0.5, 500 if second >= 100 else 200))
            await a.alerts.tick()
            await b.alerts.tick()
        fired = [e for r in (a, b) for e in r.entries]
        # Half the calls bad from 100 s: the 10m window burns above 3 from 250 s on.
        assert [e.operation for e in fired] == ["slo_fired"]
        signals = orjson.loads(fired[0].signals or "")
        assert signals["severity"] == "page" and signals["state"] == "fired"
        assert 250 < signals["at"] <= 252
        ten_minutes = next(w for w in signals["windows"] if w["window_s"] == 600)
        assert ten_minutes["bad"] / (ten_minutes["good"] + ten_minutes["bad"]) / 0.1 > 3
        (hook,) = far.at("/hook")
        assert hook["status"] == "firing" and hook["version"] == "4"
        assert hook["alerts"][0]["labels"] == {
            "alertname": "SloErrorBudgetBurn",
            "service": "governd",
            "slo": "avail",
            "severity": "page",
        }
        # Every replica tells Alertmanager what it judged, and re-sends while it fires.
        sent = far.at("/api/v2/alerts")
        assert {alert["labels"]["severity"] for batch in sent for alert in batch} == {"page"}
        resent = len(sent)
        clock.advance(30)
        await a.alerts.tick()
        assert len(far.at("/api/v2/alerts")) == resent + 1

        for _ in range(120):  # b recovers
            clock.advance(1)
            for r in (a, b):
                r.alerts.evaluator.observe(call_entry(clock.now() - 0.5))
                await r.alerts.tick()
        resolved = [e for r in (a, b) for e in r.entries if e.operation == "slo_resolved"]
        assert len(resolved) == 1
        assert [h["status"] for h in far.at("/hook")] == ["firing", "resolved"]
        last = far.at("/api/v2/alerts")[-1][0]
        assert last["endsAt"] != "0001-01-01T00:00:00Z" and last["endsAt"] <= rfc3339(clock.now())


async def test_a_restarted_replica_neither_forgets_nor_refires(tmp_path: Path) -> None:
    clock = ManualClock(start=0)
    store = SloStore(Storage(f"sqlite:///{tmp_path / 'l.db'}").engine)
    sender = AlertSender(AlertsConfig())
    first = Replica(store, clock, sender)
    for _ in range(120):
        clock.advance(1)
        first.alerts.evaluator.observe(call_entry(clock.now() - 0.5, 500))
        await first.alerts.tick()
    assert [e.operation for e in first.entries] == ["slo_fired"]
    again = Replica(store, clock, sender)
    await again.alerts.start()
    clock.advance(1)
    again.alerts.evaluator.observe(call_entry(clock.now() - 0.5, 500))
    assert await again.alerts.tick() == []  # still firing: nothing new to record
    (status,) = again.alerts.evaluator.status("avail")
    assert status.firing == ("page",)
    assert next(w.bad for w in status.windows if w.window == 600) == 121


async def test_counts_wait_out_a_store_that_is_down(tmp_path: Path) -> None:
    clock = ManualClock(start=0)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Storage(url)  # migrated
    engine = sa.create_engine(url, connect_args={"timeout": 0.05})
    replica = Replica(SloStore(engine), clock, AlertSender(AlertsConfig()))
    clock.advance(1)
    replica.alerts.evaluator.observe(call_entry(0.5, 500))
    with sqlite3.connect(tmp_path / "l.db") as other:
        other.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        with pytest.raises(sa.exc.OperationalError):
            await replica.alerts.tick()
        other.rollback()
    clock.advance(1)
    replica.alerts.evaluator.observe(call_entry(1.5, 200))
    await replica.alerts.tick()
    (status,) = replica.alerts.evaluator.status("avail")
    assert next((w.good, w.bad) for w in status.windows if w.window == 60) == (1, 1)
