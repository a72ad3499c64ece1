"""What the ledger knows about agent runs: their totals, and the runs there are."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governd.ledger.tables import entries_named, in_subtree

_ADMITTED = ("allow", "degrade")
_ACTIONS = ("model_call", "tool_call")


def risk_points(signals: str | None) -> float:
    """The risk points an entry's signals carry (0 without any)."""
    if not signals:
        return 0.0
    risk = orjson.loads(signals).get("risk")
    return float(risk.get("points", 0.0)) if isinstance(risk, dict) else 0.0


def run_totals(engine: Engine, principal: str, run_id: str) -> dict[str, Any] | None:
    """A run's counters as its entries record them, or None for a run with no entries."""
    c = entries_named.c
    q = sa.select(c.ts, c.kind, c.decision, c.cost_usd, c.signals).where(
        c.run_id == run_id, c.principal == principal
    )
    with engine.connect() as conn:
        rows = conn.execute(q).all()
    if not rows:
        return None
    admitted = [r for r in rows if r.kind in _ACTIONS and r.decision in _ADMITTED]
    return {
        "started": min(r.ts for r in rows),
        "steps": len(admitted),
        "tool_calls": sum(1 for r in admitted if r.kind == "tool_call"),
        "spent_usd": sum(float(r.cost_usd) for r in rows),
        "risk": sum(risk_points(r.signals) for r in rows),
    }


def runs(engine: Engine, principal: str | None, limit: int) -> list[dict[str, Any]]:
    """The most recently active runs: who, when, how many actions, what they cost."""
    c = entries_named.c
    q = (
        sa.select(
            c.run_id.label("run"),
            c.principal,
            sa.func.min(c.ts).label("started"),
            sa.func.max(c.ts).label("last"),
            sa.func.count().label("entries"),
            sa.func.sum(sa.case((c.kind == "tool_call", 1), else_=0)).label("tool_calls"),
            sa.func.sum(sa.case((c.decision.in_(_ADMITTED), 0), else_=1)).label("refused"),
            sa.func.sum(c.cost_usd).label("cost_usd"),
        )
        .where(c.run_id.is_not(None))
        .group_by(c.run_id, c.principal)
        .order_by(sa.desc("last"))
        .limit(limit)
    )
    if principal:
        q = q.where(in_subtree(c.principal, principal))
    with engine.connect() as conn:
        return [{str(k): v for k, v in row.items()} for row in conn.execute(q).mappings()]
