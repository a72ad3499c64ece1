"""What controllers' overrides do to admission: degrade, lower priority, shed, tighten tools."""

from __future__ import annotations

import dataclasses

import pytest

from governd.actions import Action, Principal
from governd.errors import ApprovalRequired, Overloaded, PolicyDenied
from governd.governance.overrides import Override
from tests.governance.test_admission import TEAM, admission, chat


async def test_nothing_in_force_changes_nothing() -> None:
    adm = admission()
    admitted = await adm.admit(chat(max_tokens=10))
    assert (admitted.served, admitted.priority, admitted.decision.effect) == (
        "m",
        "standard",
        "allow",
    )
    assert adm.overrides.active is False


async def test_a_degraded_model_is_served_by_its_replacement_with_the_reason() -> None:
    adm = admission()
    adm.overrides.put("k", Override("degrade", "m", "cheap", "slo:avail"))
    admitted = await adm.admit(chat(max_tokens=10))
    assert admitted.served == "cheap" and admitted.decision.effect == "degrade"
    assert admitted.decision.reasons[-1] == "slo:avail: m degraded to cheap"
    adm.overrides.remove("k")
    assert (await adm.admit(chat(max_tokens=10))).served == "m"


async def test_a_lowered_principal_runs_at_the_lower_priority_and_others_do_not() -> None:
    adm = admission()
    adm.overrides.put("k", Override("lower_priority", "acme/t", "batch", "slo:avail"))
    assert (await adm.admit(chat(max_tokens=10))).priority == "batch"
    other = chat("m", Principal("acme", "small"), max_tokens=10)
    assert (await adm.admit(other)).priority == "standard"


async def test_shed_priorities_are_refused_with_a_retry_and_the_rest_pass() -> None:
    adm = admission()
    adm.overrides.put("k", Override("shed", "m", "sheddable,batch", "slo:avail"))
    with pytest.raises(Overloaded) as shed:
        await adm.admit(dataclasses.replace(chat(max_tokens=10), priority="batch"))
    assert shed.value.retry_after == 30 and shed.value.decision is not None
    assert shed.value.decision.policy == "slo:avail"
    assert (await adm.admit(chat(max_tokens=10))).priority == "standard"


def tool() -> Action:
    return Action("r", "tool", TEAM, "s__w", {}, kind="tool_call")


@pytest.mark.parametrize(
    ("effect", "raised"), [("require_approval", ApprovalRequired), ("deny", PolicyDenied)]
)
async def test_a_tightened_tier_needs_approval_or_is_denied(
    effect: str, raised: type[Exception]
) -> None:
    adm = admission()
    adm.overrides.put("k", Override("tighten_tools", "write", effect, "slo:avail"))
    with pytest.raises(raised):
        await adm.admit_tool(tool(), "s", "write")
    assert (await adm.admit_tool(tool(), "s", "read")).effect == "allow"


async def test_a_pressed_node_is_served_by_its_models_degrade_to() -> None:
    adm = admission()
    adm.overrides.put("k", Override("degrade_node", "acme/t", "", "budget:acme/t usd/day"))
    admitted = await adm.admit(chat(max_tokens=10))
    assert admitted.served == "cheap"
    assert admitted.decision.reasons[-1] == "budget:acme/t usd/day: m degraded to cheap"
    assert (await adm.admit(chat("cheap", max_tokens=10))).served == "cheap"  # none below
