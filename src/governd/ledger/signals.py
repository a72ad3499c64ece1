"""Behaviour signals of a tool call, as its ledger entry records them.

What the call acted on and what it may have done, without what it said:
argument values are redacted unless configured (``reveal``), and a digest of
the full arguments lets an auditor match a call to the arguments a client
claims it sent. The side-effect class is what the call may have done to the
world (``none`` when it never reached the server).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson

from governd.actions import SIDE_EFFECT_OF_TIER, SideEffect
from governd.config.agents import ToolConfig

Outcome = Literal["ok", "tool_error", "refused", "failed"]
REDACTED = "[redacted]"
_MAX_TARGET = 256


def args_digest(args: dict[str, Any]) -> str:
    """SHA-256 of the arguments' canonical JSON (sorted keys)."""
    return hashlib.sha256(orjson.dumps(args, option=orjson.OPT_SORT_KEYS)).hexdigest()


def redact(value: Any, reveal: frozenset[str], path: str = "") -> Any:
    """``value`` with every leaf replaced by ``[redacted]`` unless its dotted path (or a parent's) is revealed."""
    if path and path in reveal:
        return value
    if isinstance(value, dict):
        return {k: redact(v, reveal, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, reveal, path) for v in value]
    return REDACTED


def target_of(args: dict[str, Any], path: str | None) -> str | None:
    """The value at a dotted argument path, as text, or None when absent."""
    if path is None:
        return None
    value: Any = args
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:_MAX_TARGET]


def side_effect(tier: str, outcome: Outcome, configured: SideEffect | None) -> SideEffect:
    """What the call may have done: the configured or tier's class, ``none`` if it never ran."""
    if outcome == "refused":
        return "none"
    return configured or SIDE_EFFECT_OF_TIER.get(tier, "irreversible")


def tool_signals(
    spec: ToolConfig | None, tier: str, args: dict[str, Any], outcome: Outcome
) -> dict[str, Any]:
    """The signals of one tool call."""
    reveal = frozenset(spec.reveal) if spec else frozenset()
    return {
        "tier": tier,
        "args_digest": args_digest(args),
        "args": redact(args, reveal),
        "target": target_of(args, spec.target if spec else None),
        "outcome": outcome,
        "side_effect": side_effect(tier, outcome, spec.side_effect if spec else None),
    }
