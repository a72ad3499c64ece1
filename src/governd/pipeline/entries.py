"""What an action's outcome records: its ledger entry, behaviour signals and risk points.

``model_entry`` and ``tool_entry`` build the entry of a model call and of a
tool call once everything about it is known (timing included), setting only
the fields that kind of action has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import orjson

from governd.actions import Action, Decision, RiskEvent, Usage
from governd.config.agents import ToolConfig
from governd.errors import GovernError
from governd.execution import Routed
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
    error: GovernError | None,
    weights: Mapping[RiskEvent, float],
    extra: Mapping[str, Any] | None = None,
) -> tuple[str | None, float]:
    """A model call's signals and its risk points.

    Signals are written only when there is something to say: risk events, or
    ``extra`` (the release and arm that served the call, an upstream's overbilling).
    """
    found = risk.events(None, error, False)
    if not found and extra is None:
        return None, 0.0
    part = risk_signals(found, weights) if found else None
    signals = {**({"risk": part} if part else {}), **(extra or {})}
    return orjson.dumps(signals).decode(), part["points"] if part else 0.0


@dataclass(slots=True)
class Timing:
    """When an action ended (epoch seconds) and how long it took."""

    ts: float
    latency_ms: float
    ttft_ms: float | None = None


def model_entry(
    action: Action,
    decision: Decision | None,
    error: GovernError | None,
    routed: Routed | None,
    usage: Usage,
    cost: float,
    timing: Timing,
    signals: str | None,
    note: str | None = None,
) -> LedgerEntry:
    """The entry of a model call: served, failed or refused (``note``: why a served one ended)."""
    return LedgerEntry(
        id=action.id,
        ts=timing.ts,
        kind=action.kind,
        operation=action.operation,
        principal=action.principal.path,
        key_id=action.principal.key_id,
        run_id=action.run_id,
        model=action.model or None,
        served_model=routed.target.alias if routed else None,
        deployment=routed.target.name if routed else (error.deployment if error else None),
        decision=decision.effect if decision else "deny",
        reasons="; ".join(decision.reasons) if decision else (error.code if error else ""),
        status=error.status if error else 200,
        error_code=error.code if error else note,
        stream=action.stream,
        attempts=routed.attempts if routed else (error.attempts if error else 0),
        latency_ms=timing.latency_ms,
        ttft_ms=timing.ttft_ms,
        input_tokens=usage.input_tokens,
        cached_tokens=usage.cached_tokens,
        output_tokens=usage.output_tokens,
        usage_source=usage.source,
        cost_usd=cost,
        signals=signals,
    )


def tool_entry(
    action: Action,
    target: ToolTarget,
    decision: Decision | None,
    error: GovernError | None,
    result: types.CallToolResult | None,
    weights: Mapping[RiskEvent, float],
    timing: Timing,
) -> tuple[LedgerEntry, float]:
    """The entry of a tool call, with its signals, and its risk points."""
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
        ts=timing.ts,
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
        attempts=0 if decision is None or decision.effect != "allow" else 1,
        latency_ms=timing.latency_ms,
        signals=orjson.dumps(signals).decode(),
    )
    return entry, part["points"]
