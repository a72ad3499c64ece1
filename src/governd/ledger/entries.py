"""A ledger entry: one record per action, whatever its outcome."""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class LedgerEntry:
    """What was asked, what was decided, where it ran, what it consumed and cost.

    ``signals`` is JSON text of the behaviour signals of the action (a tool
    call's tier, argument digest, target, side-effect class; risk events),
    kept as the exact text stored so that it hashes the same everywhere.
    """

    id: str
    ts: float
    kind: str
    operation: str
    principal: str
    key_id: str | None
    run_id: str | None
    model: str | None
    served_model: str | None
    deployment: str | None
    decision: str
    reasons: str
    status: int
    error_code: str | None
    stream: bool
    attempts: int
    latency_ms: float
    ttft_ms: float | None
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    usage_source: str
    cost_usd: float
    signals: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON and storage (shallow: every field is a scalar)."""
        return {name: getattr(self, name) for name in FIELDS}

    def as_tuple(self) -> tuple[Any, ...]:
        """Field values in ``FIELDS`` order."""
        return _values(self)


#: Entry field names, in storage column order.
FIELDS = tuple(f.name for f in fields(LedgerEntry))
#: The fields of the first entry format (before ``signals``), which older entries hash over.
FIELDS_V1 = FIELDS[: FIELDS.index("signals")]
_values = operator.attrgetter(*FIELDS)
