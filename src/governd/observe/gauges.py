"""Live gauges: calls in flight and queued per model, ledger lag, budget remaining per node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from governd.execution import Router
from governd.governance.budgets import Budgets
from governd.ledger import LedgerWriter
from governd.observe.metrics import Sample

log = logging.getLogger("governd.observe")
REFRESH_S = 5.0


class BudgetGauges:
    """Budget remaining per node, refreshed off the request path (the state may be in Redis)."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    async def refresh(self, budgets: Budgets) -> None:
        """Read every budget's current window once (after catching up with other replicas)."""
        await budgets.sync()
        out: list[Sample] = []
        for key in budgets.all():
            limit = budgets.limit(key)
            if limit is None:
                continue
            spent, reserved = await budgets.state.usage(key, budgets.window(key)[0])
            labels = {"principal": key.node, "unit": key.unit, "period": key.period}
            out.append((labels, max(0.0, limit.limit - spent - reserved)))
        self.samples = out

    async def refresh_forever(self, budgets: Budgets) -> None:
        """Refresh every ``REFRESH_S`` seconds until cancelled."""
        while True:
            try:
                await self.refresh(budgets)
            except Exception:
                log.warning("budget gauges not refreshed", exc_info=True)
            await asyncio.sleep(REFRESH_S)


def live_sources(
    router: Router, models: Iterable[str], writer: LedgerWriter, budgets: BudgetGauges
) -> dict[str, tuple[str, Callable[[], Iterable[Sample]]]]:
    """The scrape-time gauges."""
    aliases = list(models)

    def in_flight() -> Iterable[Sample]:
        for alias in aliases:
            yield {"model": alias}, float(sum(t.in_flight for t in router.targets(alias)))

    def queued() -> Iterable[Sample]:
        for alias, gate in router.gates.items():
            yield {"model": alias}, float(gate.waiting)

    return {
        "governd_in_flight": ("Calls being served now", in_flight),
        "governd_queued": ("Calls waiting for capacity", queued),
        "governd_ledger_lag": (
            "Ledger entries not yet stored",
            lambda: [({}, float(writer.lag))],
        ),
        "governd_budget_remaining": ("Budget left in the current period", lambda: budgets.samples),
    }
