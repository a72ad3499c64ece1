"""Admission of actions in runs: policies read the run, its risk level tightens it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from governd.actions import Action, Principal
from governd.clock import ManualClock
from governd.config import parse_config
from governd.errors import ApprovalRequired, PolicyDenied
from governd.governance.admission import Admission
from governd.governance.budgets import Budgets
from governd.governance.principals import PrincipalTree
from governd.governance.state.local_budgets import LocalState

CONFIG = """
principals: {org: acme, teams: {t: {}}}
upstreams: {sim: {kind: sim}}
models: {m: {deployments: [{upstream: sim, model: sim}]}}
policies:
  - {id: short-runs, when: 'request.operation != "tool" && run.steps > 2', effect: deny}
  - {id: no-reads-when-risky, when: 'run.risk >= 5.0 && tool.tier == "read"', effect: deny}
runs:
  risk:
    levels:
      - {at: 3, name: guarded, tiers: {write: require_approval, destructive: deny}}
      - {at: 10, name: stopped, stop: true}
"""
WHO = Principal("acme", "t")


def admission() -> Admission:
    cfg = parse_config(CONFIG)
    clock = ManualClock()
    return Admission(cfg, PrincipalTree(cfg), Budgets(LocalState(), ZoneInfo("UTC"), clock), clock)


def chat(run: str | None) -> Action:
    return Action(
        "c", "chat", WHO, "m", {"messages": [{"role": "user", "content": "hi"}]}, run_id=run
    )


def tool(run: str) -> Action:
    return Action("t", "tool", WHO, "s__x", {}, run_id=run, kind="tool_call")


async def test_policies_see_the_runs_steps() -> None:
    adm = admission()
    for _ in range(2):
        await adm.admit(chat("r1"))
    with pytest.raises(PolicyDenied) as info:
        await adm.admit(chat("r1"))
    assert info.value.policy == "short-runs"
    await adm.admit(chat(None))  # outside runs, run.steps is 0


async def test_a_guarded_run_holds_writes_and_disables_destructive_tools() -> None:
    adm = admission()
    assert (await adm.admit_tool(tool("r2"), "s", "write")).effect == "allow"
    await adm.runs.add_risk(tool("r2"), 3)
    with pytest.raises(ApprovalRequired) as held:
        await adm.admit_tool(tool("r2"), "s", "write")
    assert held.value.policy == "run_risk:guarded"
    with pytest.raises(PolicyDenied) as denied:
        await adm.admit_tool(tool("r2"), "s", "destructive")
    assert denied.value.policy == "run_risk:guarded"
    assert (await adm.admit_tool(tool("r2"), "s", "external")).effect == "allow"
    assert (await adm.admit_tool(tool("other"), "s", "destructive")).effect == "allow"


async def test_policies_see_the_runs_risk_and_a_stopped_run_does_nothing() -> None:
    adm = admission()
    await adm.runs.add_risk(tool("r3"), 5)
    with pytest.raises(PolicyDenied) as reads:
        await adm.admit_tool(tool("r3"), "s", "read")
    assert reads.value.policy == "no-reads-when-risky"
    await adm.runs.add_risk(tool("r3"), 5)
    with pytest.raises(PolicyDenied) as stopped:
        await adm.admit(chat("r3"))
    assert (
        stopped.value.policy == "run_risk:stopped" and "the run is stopped" in stopped.value.message
    )
