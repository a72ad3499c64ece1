"""Records what every action ends with: its ledger entry, metrics and span, and its risk.

Shared by model calls, tool calls and control changes, so that each writes
its entry the same way: appended, counted, traced, and awaited when the
ledger is strict (or past its backlog), then its risk points added to its run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from governd.actions import Action
from governd.clock import Clock
from governd.controllers.run_risk import RunRisk
from governd.errors import StorageUnavailable
from governd.governance.runs import Runs
from governd.ledger import LedgerEntry, LedgerWriter
from governd.ledger.writer import control_entry
from governd.observe.traces import Tracing

#: Told of every action's entry once it is appended (metrics, SLOs).
Observer = Callable[[LedgerEntry], None]


class Recorder:
    """Appends entries and feeds their outcomes back into runs."""

    def __init__(
        self,
        writer: LedgerWriter,
        observers: Sequence[Observer],
        clock: Clock,
        runs: Runs,
        tracing: Tracing | None = None,
    ) -> None:
        self._writer = writer
        self._observers = tuple(observers)
        self._tracing = tracing
        self.clock = clock
        self.risk = RunRisk(runs, self.record_control)

    def close(self) -> None:
        """Export pending spans (blocking: run it off the event loop)."""
        if self._tracing is not None:
            self._tracing.shutdown()

    async def record(
        self,
        entry: LedgerEntry,
        action: Action,
        risk_points: float,
        span: tuple[str | None, str | None] | None = None,
    ) -> None:
        """Append an action's entry, wait for it as the ledger requires, then add its risk.

        ``span``: for a model call, the upstream kind and model that served it
        (its trace span); tool calls get a tool span.
        """
        if self._tracing is not None:
            if span is None:
                self._tracing.record_tool(entry)
            else:
                self._tracing.record(entry, *span)
        await self.store(entry)
        await self.risk.observe(action, risk_points)

    async def store(self, entry: LedgerEntry) -> None:
        """Append an entry, waiting as the ledger requires (strict, or backlogged), then count it."""
        await self.append(entry)
        for observe in self._observers:
            observe(entry)

    async def record_control(
        self, principal: str, operation: str, detail: str, run_id: str | None = None
    ) -> str:
        """Record a change an operator or controller made to live state; returns the entry id."""
        entry = control_entry(operation, detail, principal, self.clock.now(), run_id)
        await self.append(entry)
        return entry.id

    def check_recordable(self) -> None:
        """``StorageUnavailable`` when new work could not be recorded (``LedgerWriter.accepting``).

        Strict durability refuses work while the store fails rather than answer
        unrecorded; batched, once its buffer is full.
        """
        if not self._writer.accepting:
            raise StorageUnavailable(
                "the ledger cannot record new work now (its database is unavailable)",
                retry_after=1.0,
            )

    async def append(self, entry: LedgerEntry) -> None:
        """Append an entry no observer counts (a control entry), waiting as the ledger requires.

        While the store fails, a refusal's entry is queued, not awaited: nothing
        was done that must be recorded before the answer.
        """
        durable = self._writer.append(entry)
        if durable is not None and not (self._writer.failing and entry.decision != "allow"):
            await durable
