"""What an action's outcome records: its ledger entry, behaviour signals and risk points."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson

from governd.actions import Action, Decision, RiskEvent
from governd.config.agents import ToolConfig
from governd.errors import GovernError
from governd.governance import risk
from governd.ledger import LedgerEntry
from governd.ledger.signals import Outcome, tool_signals


@dataclass(frozen=True, slots=True)
class ToolTarget:
    """Which tool a call named: its server, its name there, its tier and config (if known)."""

    server: str
    tool: str
    tier: str | None
    spec: ToolConfig | None = None


def result_text(result: types.CallToolResult) -> str:
    """The text a tool returned (what a model would read)."""
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


def risk_signals(found: list[RiskEvent], weights: Mapping[RiskEvent, float]) -> dict[str, Any]:
    """The ``risk`` part of an entry's signals."""
    return {"events": found, "points": risk.points(found, weights)}


def model_signals(
    error: GovernError | None, weights: Mapping[RiskEvent, float]
) -> tuple[str | None, float]:
    """A model call's signals (only when it raised risk events) and its risk points."""
    found = risk.events(None, error, False)
    if not found:
        return None, 0.0
    part = risk_signals(found, weights)
    return orjson.dumps({"risk": part}).decode(), part["points"]


def tool_outcome(
    action: Action,
    target: ToolTarget,
    decision: Decision | None,
    error: GovernError | None,
    result: types.CallToolResult | None,
    weights: Mapping[RiskEvent, float],
) -> tuple[LedgerEntry, float]:
    """The entry of a tool call (timing left to the caller), with its signals, and its risk points."""
    failed = error is not None or (result is not None and result.is_error)
    reasons = "; ".join(decision.reasons) if decision else (error.code if error else "")
    tier = target.tier or "unknown"
    ran = decision is not None and decision.effect == "allow" and error is None
    outcome: Outcome = (
        ("tool_error" if failed else "ok")
        if ran
        else ("failed" if error is not None and error.status >= 500 else "refused")
    )
    injected = result is not None and risk.injection(result_text(result)) is not None
    found = risk.events(target.tier, error, injected)
    part = risk_signals(found, weights)
    signals = {**tool_signals(target.spec, tier, action.body, outcome), "risk": part}
    entry = LedgerEntry(
        id=action.id,
        ts=0.0,
        kind="tool_call",
        operation="tool",
        principal=action.principal.path,
        key_id=action.principal.key_id,
        run_id=action.run_id,
        model=action.model,
        served_model=target.tool or None,
        deployment=target.server or None,
        decision=decision.effect if decision else "deny",
        reasons=f"tier:{tier}" + (f"; {reasons}" if reasons else ""),
        status=error.status if error else (200 if not failed else 502),
        error_code=error.code if error else ("tool_error" if failed else None),
        stream=False,
        attempts=0 if decision is None or decision.effect != "allow" else 1,
        latency_ms=0.0,
        ttft_ms=None,
        input_tokens=0,
        cached_tokens=0,
        output_tokens=0,
        usage_source="none",
        cost_usd=0.0,
        signals=orjson.dumps(signals).decode(),
    )
    return entry, part["points"]
