"""An SLO alert's transition as words and as its ledger entry (a control entry with its counts)."""

from __future__ import annotations

from governd.durations import format_duration
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.evaluator import Transition
from governd.ledger.writer import control_entry

#: The operation of an alert's entry, by its state (operations are at most 16 characters).
OPERATIONS = {"fired": "slo_fired", "resolved": "slo_resolved"}


def summary(t: Transition) -> str:
    """The SLO, its group and the windows' burns that decided the transition, on one line."""
    group = " ".join(f"{k}={v}" for k, v in t.group)
    burns = " ".join(f"{format_duration(w.window)}={w.burn:.2f}" for w in t.windows)
    figures = f"burn {burns}  budget left {t.remaining:.1%}" if t.windows else ""
    return "  ".join(part for part in (t.slo, group, figures) if part)


def alert_entry(t: Transition) -> LedgerEntry:
    """The ledger entry of a transition: what changed in words, the window counts as signals."""
    detail = f"{t.severity} {t.state}: {summary(t)}"
    return control_entry(OPERATIONS[t.state], detail, ts=t.at, signals=t.as_dict())
