"""Risk events: what an action's outcome says about the run it belongs to.

Each event has a weight (``runs.risk.weights``); a run's risk score is the sum
of the weights of its events, and its level (``runs.risk.levels``) tightens
what the run may still do. Text that tries to instruct the model (in a tool's
description or in what a tool returned) is found by ``injection``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from governd.actions import RiskEvent
from governd.errors import (
    ApprovalDenied,
    GovernError,
    InvalidRequest,
    PolicyDenied,
    RunLimitExceeded,
    ToolQuarantined,
)

INJECTION_PATTERNS = [
    r"ignore (all |any )?(previous|prior|above) (instructions|prompts?)",
    r"disregard (the |all )?(previous|prior|above|system)",
    r"<\s*(important|system|instructions?)\s*>",
    r"do not (tell|inform|mention (this )?to) the user",
    r"(reveal|print|send|leak|exfiltrate)\b.{0,40}\b(system prompt|api[_ -]?keys?|secrets?|credentials|passwords?)",
    r"(~|\$home)/\.(ssh|aws|config)",
    r"(curl|wget)\s+https?://",
    r"you (must|should) (always )?(call|use|run) (this|the following) tool (first|before)",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in INJECTION_PATTERNS), re.IGNORECASE)


def injection(text: str | None) -> str | None:
    """The first instruction-injection pattern found in ``text``, or None."""
    if not text:
        return None
    found = _INJECTION.search(text)
    return found.group(0) if found else None


def events(tier: str | None, error: GovernError | None, injected: bool) -> list[RiskEvent]:
    """The risk events of one action: its tier (tool calls), how it was refused, what it returned."""
    found: list[RiskEvent] = []
    if tier == "destructive":
        found.append("destructive")
    if isinstance(error, ToolQuarantined):
        found.append("quarantined")
    elif isinstance(error, ApprovalDenied):
        found.append("approval_denied")
    elif isinstance(error, PolicyDenied):
        found.append("denied")
    elif isinstance(error, RunLimitExceeded):
        found.append("run_limit")
    elif isinstance(error, InvalidRequest):
        found.append("invalid")
    if injected:
        found.append("injection")
    return found


def points(found: list[RiskEvent], weights: Mapping[RiskEvent, float]) -> float:
    """The risk score the events add."""
    return sum(weights.get(e, 0.0) for e in found)
