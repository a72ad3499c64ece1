"""A ledger entry: one record per action, whatever its outcome."""

from __future__ import annotations

import operator
from dataclasses import dataclass, fields
from typing import Any


# Not frozen: a frozen dataclass's __init__ costs ~4 µs for 24 fields, on every request.
@dataclass(slots=True)
class LedgerEntry:
    """What was asked, what was decided, where it ran, what it consumed and cost.

    ``signals`` is JSON text of the behaviour signals of the action (a tool
    call's tier, argument digest, target, side-effect class; risk events),
    kept as the exact text stored so that it hashes the same everywhere.
    Each kind of action sets the fields it has; the rest keep their defaults
    (the field order is the storage and hash order, and never changes).
    """

    id: str
    ts: float
    kind: str
    operation: str
    principal: str
    key_id: str | None = None
    run_id: str | None = None
    model: str | None = None
    served_model: str | None = None
    deployment: str | None = None
    decision: str = "allow"
    reasons: str = ""
    status: int = 200
    error_code: str | None = None
    stream: bool = False
    attempts: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    usage_source: str = "none"
    cost_usd: float = 0.0
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
