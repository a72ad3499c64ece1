"""An SLO's error-budget policy: what governd does while the SLO burns, and until when.

Each entry names a trigger -- an alert that fires (``when: page``, ``ticket``,
``no_data``), the budget spent (``when: exhausted``) or running low
(``remaining_below: 0.25``) -- and one action on live governance:

- ``freeze_releases``: releases of ``model`` (left out: the group's model, or
  every release) freeze: no step, no promotion, no blame on the canary;
- ``shift_route``: a deployment gets no new calls while others (or the alias's
  fallbacks) can take them;
- ``degrade``: calls to a model are served by ``to`` instead;
- ``lower_priority``: a principal's calls run at priority ``to`` at most;
- ``shed``: calls to a model at the ``priorities`` given are refused (503);
- ``tighten_tools``: tools of ``tier`` need approval (or are denied).

A target left out is read from the SLO's group (``deployment``, ``model``,
``principal``), so a policy of an SLO grouped by deployment acts on the
deployment that burns. An action is undone only when its trigger has cleared,
no page alert of the group fires, and it has held for ``hold``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from governd.actions import Priority, RiskTier
from governd.config.base import StrictModel
from governd.durations import parse_duration

Trigger = Literal["page", "ticket", "no_data", "exhausted"]
PolicyAction = Literal[
    "freeze_releases", "shift_route", "degrade", "lower_priority", "shed", "tighten_tools"
]
_SHED: tuple[Priority, ...] = ("sheddable", "batch")
#: The group label each action's target may come from.
TARGET_LABEL = {
    "shift_route": "deployment",
    "degrade": "model",
    "shed": "model",
    "lower_priority": "principal",
}


class SloPolicy(StrictModel):
    """One trigger and the action it takes."""

    when: Trigger | None = Field(None, description="an alert severity, or `exhausted`")
    remaining_below: float | None = Field(
        None, gt=0, le=1, description="act while less than this share of the error budget is left"
    )
    do: PolicyAction
    deployment: str | None = Field(None, description="shift_route: `upstream/model`")
    model: str | None = Field(
        None, description="degrade, shed: the model alias; freeze_releases: whose releases"
    )
    principal: str | None = Field(None, description="lower_priority: TEAM[/PROJECT]")
    to: str | None = Field(None, description="degrade: the alias; lower_priority: the priority")
    priorities: list[Priority] = Field(
        default_factory=lambda: list(_SHED), description="shed: which calls"
    )
    tier: RiskTier | None = Field(None, description="tighten_tools: the tier")
    effect: Literal["require_approval", "deny"] = "require_approval"
    hold: float = Field(300.0, ge=0, description="the least time an action stays (e.g. 5m)")

    _hold = field_validator("hold", mode="before")(
        lambda v: parse_duration(v) if isinstance(v, str) else v
    )

    @model_validator(mode="after")
    def _complete(self) -> SloPolicy:
        if (self.when is None) == (self.remaining_below is None):
            raise ValueError("give exactly one of `when` or `remaining_below`")
        if self.do == "degrade" and not self.to:
            raise ValueError("degrade needs `to`: the model alias that serves instead")
        if self.do == "lower_priority" and self.to not in (
            "critical",
            "standard",
            "batch",
            "sheddable",
        ):
            raise ValueError("lower_priority needs `to`: critical, standard, batch or sheddable")
        if self.do == "tighten_tools" and self.tier is None:
            raise ValueError("tighten_tools needs `tier`: read, write, external or destructive")
        return self

    @property
    def target(self) -> str | None:
        """The target the config names (None: the group's label)."""
        named = {"shift_route": self.deployment, "degrade": self.model, "shed": self.model}
        named["freeze_releases"] = self.model
        return {**named, "lower_priority": self.principal}.get(self.do)

    def describe(self) -> str:
        """The trigger in words: ``page`` or ``budget below 25%``."""
        if self.when is not None:
            return self.when
        return f"budget below {self.remaining_below:.0%}"
