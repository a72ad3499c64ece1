"""Run risk escalation: risk events raise a run's score; crossing a level tightens the run.

The pipeline feeds it the risk points of each recorded action. It adds them
to the run's score (shared state, so every replica sees the new level on the
run's very next action) and, when the score crosses a level of
``runs.risk.levels``, records the escalation in the ledger: the level, the
score and what the run may no longer do. Scores are added atomically and
each addition knows the score before it, so exactly one replica records a
crossing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from governd.actions import Action
from governd.config.agents import RiskLevelConfig
from governd.governance.runs import Runs

#: Records a control entry: (principal, operation, detail, run id) -> entry id.
Record = Callable[[str, str, str, str | None], Awaitable[str]]


def describe(level: RiskLevelConfig) -> str:
    """What a level does to a run, in words."""
    if level.stop:
        return "every further action refused"
    held = [t for t, effect in level.tiers.items() if effect == "require_approval"]
    denied = [t for t, effect in level.tiers.items() if effect == "deny"]
    parts = []
    if held:
        parts.append(f"{', '.join(held)} tools need approval")
    if denied:
        parts.append(f"{', '.join(denied)} tools disabled")
    return "; ".join(parts) or "no change"


class RunRisk:
    """Adds risk points to runs and records each level a run reaches."""

    def __init__(self, runs: Runs, record: Record) -> None:
        self._runs = runs
        self._record = record

    async def observe(self, action: Action, points: float) -> None:
        """Add an action's risk points to its run; record the escalation if a level is crossed."""
        if not action.run_id or points <= 0:
            return
        before, after = await self._runs.add_risk(action, points)
        old, new = self._runs.level_at(before), self._runs.level_at(after)
        if new is None or new is old:
            return
        detail = (
            f"run {action.run_id} risk {before:g} -> {after:g}: level {new.name} "
            f"(from {new.at:g}): {describe(new)}"
        )
        await self._record(action.principal.path, "run_escalated", detail, action.run_id)
