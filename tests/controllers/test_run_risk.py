"""Run risk escalation: each level a run reaches is recorded once, with what it tightens."""

from __future__ import annotations

from governd.actions import Action, Principal
from governd.clock import ManualClock
from governd.config import parse_config
from governd.controllers.run_risk import RunRisk, describe
from governd.governance.principals import PrincipalTree
from governd.governance.runs import LocalRuns, Runs

CONFIG = """
runs:
  risk:
    levels:
      - {at: 3, name: guarded, tiers: {write: require_approval, external: require_approval, destructive: deny}}
      - {at: 5, name: tight, tiers: {write: deny}}
      - {at: 8, name: stopped, stop: true}
"""


def make() -> tuple[RunRisk, list[tuple[str, str, str, str | None]]]:
    cfg = parse_config(CONFIG)
    clock = ManualClock()
    runs = Runs(cfg, PrincipalTree(cfg), LocalRuns(clock, 3600), clock)
    recorded: list[tuple[str, str, str, str | None]] = []

    async def record(principal: str, operation: str, detail: str, run: str | None) -> str:
        recorded.append((principal, operation, detail, run))
        return "ctl_x"

    return RunRisk(runs, record), recorded


def act(run: str | None = "r1") -> Action:
    return Action("a", "tool", Principal("default", "t"), "s__x", {}, run_id=run, kind="tool_call")


async def test_crossing_a_level_is_recorded_once() -> None:
    risk, recorded = make()
    await risk.observe(act(), 2)
    assert recorded == []
    await risk.observe(act(), 1)
    assert recorded == [
        (
            "default/t",
            "run_escalated",
            "run r1 risk 2 -> 3: level guarded (from 3): write, external tools need approval; "
            "destructive tools disabled",
            "r1",
        )
    ]
    await risk.observe(act(), 1)
    assert len(recorded) == 1


async def test_a_jump_past_several_levels_records_the_highest() -> None:
    risk, recorded = make()
    await risk.observe(act(), 9)
    assert [r[2].split(": level ")[1].split(" ")[0] for r in recorded] == ["stopped"]
    assert recorded[0][2].endswith("every further action refused")


async def test_actions_outside_runs_or_without_points_change_nothing() -> None:
    risk, recorded = make()
    await risk.observe(act(None), 10)
    await risk.observe(act(), 0)
    assert recorded == []


def test_describe() -> None:
    levels = parse_config(CONFIG).runs.risk.levels
    assert [describe(level) for level in levels][1:] == [
        "write tools disabled",
        "every further action refused",
    ]
