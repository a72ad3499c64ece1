"""Metrics from settled entries, and budget gauges from live state."""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families

from governd.actions import Principal
from governd.clock import ManualClock
from governd.governance.budgets import BudgetKey, Budgets, Cost, Limit
from governd.governance.state.local_budgets import LocalState
from governd.observe.gauges import BudgetGauges
from governd.observe.metrics import Metrics
from tests.ledger.test_storage import BASE


def samples(metrics: Metrics) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def test_refusals_count_as_requests_and_decisions_but_not_consumption() -> None:
    m = Metrics()
    m.observe(
        replace(
            BASE,
            status=429,
            decision="deny",
            input_tokens=0,
            cached_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
        )
    )
    m.observe(BASE)
    got = samples(m)
    assert got["governd_requests_total"] == 2 and got["governd_decisions_total"] == 2
    assert (
        got["governd_tokens_total"] == BASE.input_tokens + BASE.cached_tokens + BASE.output_tokens
    )
    assert got["governd_request_duration_seconds_count"] == 1
    assert got["governd_prefix_cache_hit_ratio"] == BASE.cached_tokens / BASE.input_tokens


async def test_budget_gauges_show_what_is_left() -> None:
    budgets = Budgets(LocalState(), ZoneInfo("UTC"), ManualClock())
    budgets.set(BudgetKey("acme/t", "usd", "day"), Limit(10.0))
    hold = await budgets.reserve(Principal("acme", "t"), Cost(4.0, 0))
    gauges = BudgetGauges()
    await gauges.refresh(budgets)
    assert gauges.samples == [({"principal": "acme/t", "unit": "usd", "period": "day"}, 6.0)]
    await budgets.settle(hold, Cost(1.5, 0))
    await gauges.refresh(budgets)
    assert gauges.samples[0][1] == 8.5
