"""SLO alerts in the server: counted on every entry, judged on every tick, recorded once.

The recorder hands each appended entry to the evaluator's ``observe`` (its
hot path). Every ``interval`` seconds of the injected clock, ``tick`` adds what
this replica counted to the shared buckets, reads back every replica's
totals, judges each SLO's alert rules and, for each alert that fired or
resolved, records a ledger entry with the window counts that decided it --
only where its compare-and-set in the store succeeds, so once across
replicas -- and tells Alertmanager and the webhooks. A restarted replica
takes up the stored buckets and firing alerts where they were.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from governd.clock import Clock
from governd.controllers.slo_policies import OPERATIONS as POLICY_OPERATIONS
from governd.controllers.slo_policies import SloPolicies
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.alerts import alert_entry
from governd.ledger.slos.evaluator import Delta, SloEvaluator, Transition
from governd.ledger.slos.store import SloStore
from governd.observe.alerts import AlertSender

log = logging.getLogger("governd.slos")
#: Appends an entry to the ledger.
Append = Callable[[LedgerEntry], Awaitable[None]]
#: Seconds between prunes of buckets no window covers.
PRUNE_S = 300.0


class SloAlerts:
    """The SLOs of a config, evaluated over every replica's counts, their alerts recorded and sent."""

    def __init__(
        self,
        evaluator: SloEvaluator,
        store: SloStore,
        append: Append,
        sender: AlertSender,
        clock: Clock,
        policies: SloPolicies | None = None,
    ) -> None:
        #: Counts the entries the recorder appends (it is one of the recorder's observers).
        self.evaluator = evaluator
        self.store = store
        self._append = append
        self._sender = sender
        self._clock = clock
        #: The error-budget policies, reconciled after every judgement (None: no SLO has any).
        self.policies = policies
        self._retention = {name: self.evaluator.widths(name) for name in self.evaluator.names}
        self._unsent: list[Delta] = []
        self._next_resend = self._next_prune = 0.0

    async def start(self) -> None:
        """Take up the stored buckets and firing alerts (a restart loses no budget)."""
        now = self._clock.now()
        totals = await asyncio.to_thread(self.store.load, self._retention, now)
        self.evaluator.load(totals)
        states = await asyncio.to_thread(self.store.alerts)
        policies = [s for s in states if s["severity"].startswith("policy:")]
        self.evaluator.restore(
            (a["slo"], a["group"], a["severity"])
            for a in states
            if a["firing"] and not a["severity"].startswith("policy:")
        )
        if self.policies is not None:
            steps = await asyncio.to_thread(self.store.recorded, list(POLICY_OPERATIONS.values()))
            self.policies.restore(policies, steps)

    async def tick(self) -> list[Transition]:
        """Share this replica's counts, judge every SLO, record and send what changed.

        Returns the transitions this replica recorded (another may have recorded the rest).
        """
        now = self._clock.now()
        deltas = self._unsent + self.evaluator.drain()
        try:
            totals = await asyncio.to_thread(self.store.exchange, deltas, self._retention, now)
        except Exception:
            # Kept to add at the next tick: a store that is down delays counts, never drops them.
            self._unsent = deltas
            raise
        self._unsent = []
        self.evaluator.load(totals)
        recorded = []
        for transition in self.evaluator.judge(now):
            t = transition
            fired = t.state == "fired"
            if await asyncio.to_thread(self.store.claim, t.slo, t.group, t.severity, fired, t.at):
                await self._append(alert_entry(transition))
                await self._sender.recorded(transition, now)
                recorded.append(transition)
            await self._sender.judged(transition, now)
        if self.policies is not None:
            await self.policies.reconcile(now)
        await self._housekeep(now)
        return recorded

    async def _housekeep(self, now: float) -> None:
        if now >= self._next_resend:
            self._next_resend = now + self._sender.resend_s
            await self._sender.resend(now)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_S
            await asyncio.to_thread(self.store.prune, self._retention, now)

    async def run(self) -> None:
        """Tick at every multiple of the evaluator's interval until cancelled."""
        interval = self.evaluator.interval
        while True:
            try:
                await self.tick()
            except Exception:
                log.warning("SLO tick failed; counts kept for the next", exc_info=True)
            await asyncio.sleep(interval - self._clock.now() % interval)
