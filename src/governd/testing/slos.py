"""Builders for SLO tests: one SLO whose windows are easy to count by hand, and entries for it.

The SLO: objective 90% (error budget 0.1) over 1h, one page pair of 10m/1m at
50% of the budget, so its factor is 0.5 * 3600/600 = 3. Its 1m window is
counted in 1 s buckets, its 10m in 10 s and its 1h in 1 m.
"""

from __future__ import annotations

from governd.config.slos import BurnPair, SloConfig
from governd.ledger.entries import LedgerEntry

PAGE = BurnPair(severity="page", long=600, short=60, budget_percent=50)


def slo_config(**overrides: object) -> SloConfig:
    """The hand-countable SLO ``avail`` (availability), with ``overrides``."""
    fields: dict[str, object] = {
        "name": "avail",
        "objective": 90,
        "window": 3600,
        "sli": "availability",
        "alerts": [PAGE],
        "no_data": None,
    }
    return SloConfig.model_validate({**fields, **overrides})


def call_entry(ts: float, status: int = 200, **fields: object) -> LedgerEntry:
    """A model call's entry at ``ts`` that ended with ``status``."""
    return LedgerEntry(
        id="e",
        ts=ts,
        kind="model_call",
        operation="chat",
        principal="acme",
        status=status,
        **fields,  # type: ignore[arg-type]
    )
