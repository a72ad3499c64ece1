"""The ``releases:`` part of ``governd.yaml``: moving a model alias from a stable to a canary target.

A release names an alias (``model``), the ``canary`` target its calls move
to -- a deployment ``upstream/model``, a system prompt, or both -- and the
``steps`` that move them, in Argo Rollouts' words: ``set_weight`` (the share
of principals, or runs, served by the canary), ``pause`` (for a duration
and/or a number of the canary's events) and ``analysis`` (wait until every
check is conclusive). Checks run all along (``analysis``), each successful,
failed or inconclusive; ``headroom`` is checked before every weight step,
``gates`` before the release may start.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import orjson
from pydantic import Field, field_validator, model_validator

from governd.config.base import StrictModel
from governd.durations import parse_duration

Sticky = Literal["principal", "run"]
Tier = Literal["low", "medium", "high", "critical"]
#: Tiers at which a human must approve before a release starts.
APPROVED_TIERS: tuple[Tier, ...] = ("high", "critical")


def _seconds(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


class Target(StrictModel):
    """What serves a release's arm: a deployment of the alias, a system prompt, or both."""

    deployment: str | None = Field(
        None,
        pattern=r"^[^/]+/.+$",
        description="`upstream/model`: the alias's deployment, or another model on a configured upstream",
    )
    system_prompt: str | None = Field(
        None, description="the system prompt this arm's calls are sent with (replacing theirs)"
    )

    def digest(self) -> str:
        """``sha256:...`` of what the target is: evaluation evidence must name it to count."""
        prompt = self.system_prompt
        spec = {
            "deployment": self.deployment,
            "system_prompt": None
            if prompt is None
            else hashlib.sha256(prompt.encode()).hexdigest(),
        }
        return (
            "sha256:" + hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()
        )

    def describe(self) -> str:
        """The target in words: ``sim/m2``, ``prompt sha256:ab12...``, or both."""
        parts = [self.deployment] if self.deployment else []
        if self.system_prompt is not None:
            digest = hashlib.sha256(self.system_prompt.encode()).hexdigest()[:12]
            parts.append(f"system prompt {digest}")
        return " + ".join(parts) or "the alias as configured"


class Pause(StrictModel):
    """Wait for a duration and/or until the canary saw enough events (both, when both are given)."""

    duration: float | None = Field(None, gt=0, description="e.g. 5m")
    min_events: int | None = Field(None, ge=1, description="the canary's events in this step")

    _duration = field_validator("duration", mode="before")(_seconds)

    @model_validator(mode="after")
    def _something(self) -> Pause:
        if self.duration is None and self.min_events is None:
            raise ValueError("a pause needs `duration`, `min_events` or both")
        return self


class Step(StrictModel):
    """One step: exactly one of ``set_weight``, ``pause`` or ``analysis``."""

    set_weight: float | None = Field(None, ge=0, le=100, description="percent of principals (runs)")
    pause: Pause | None = None
    analysis: dict[str, object] | None = Field(
        None, description="`{}`: wait here until every check is conclusive and none failed"
    )

    @model_validator(mode="after")
    def _one(self) -> Step:
        given = [n for n in ("set_weight", "pause", "analysis") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step is exactly one of set_weight, pause or analysis (got {', '.join(given) or 'none'})"
            )
        if self.analysis:
            raise ValueError(
                "analysis takes no options: the release's `analysis` says what to check"
            )
        return self

    @property
    def kind(self) -> str:
        """``set_weight``, ``pause`` or ``analysis``."""
        return next(n for n in ("set_weight", "pause", "analysis") if getattr(self, n) is not None)


class Increase(StrictModel):
    """How much worse the canary may be than stable: allowed, and critical (then it fails)."""

    allowed: float = Field(0.1, ge=0, description="relative: 0.1 is 10% higher")
    critical: float = Field(0.5, ge=0, description="relative: past this, with confidence, it fails")

    @model_validator(mode="after")
    def _ordered(self) -> Increase:
        if self.critical < self.allowed:
            raise ValueError("`critical` must be at least `allowed`")
        return self


class Analysis(StrictModel):
    """What is checked on each arm, all along the release."""

    slo: str | None = Field(
        None, description="the SLO whose indicator and error budget judge errors (default: 5xx)"
    )
    max_burn: float | None = Field(
        None,
        gt=0,
        description="the canary fails past this burn rate of the SLO's budget (default: its fastest page factor)",
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="of every test's verdict")
    min_events: int = Field(
        20, ge=1, description="per arm, before a comparison of latencies or costs says anything"
    )
    latency: Increase | None = Field(default_factory=Increase, description="p95 latency")
    ttft: Increase | None = Field(default_factory=Increase, description="p95 time to first token")
    cost: Increase | None = Field(
        default_factory=lambda: Increase(allowed=0.1, critical=0.25),
        description="USD per successful call",
    )
    refusals: float | None = Field(
        0.05, ge=0, le=1, description="more refused calls than stable by this share: failed"
    )
    tool_risk: float | None = Field(
        0.05, ge=0, description="more risk events per tool call than stable by this: failed"
    )


class Headroom(StrictModel):
    """What must be left before a weight step is taken."""

    min_error_budget: float = Field(
        0.25, ge=0, le=1, description="of the analysis SLO's error budget, left over its window"
    )
    max_budget_per_step: float = Field(
        0.05,
        gt=0,
        le=1,
        description="the most of the SLO's error budget a step may spend before its canary is stopped",
    )
    cost: bool = Field(True, description="the step's projected cost fits the budgets it spends")


class Evidence(StrictModel):
    """An evaluation result a release needs before it starts."""

    file: str = Field(description="promptfoo's `--output results.json`, or governd's format")
    format: Literal["promptfoo", "governd"] = "promptfoo"
    metric: str = Field("pass_rate", description="promptfoo: pass_rate or a named score")
    threshold: float = Field(description="the least value the metric must have")
    max_age: float = Field(7 * 86400, gt=0, description="how old the result may be (e.g. 7d)")

    _max_age = field_validator("max_age", mode="before")(_seconds)


class Gates(StrictModel):
    """What a release needs before it may start."""

    tier: Tier = Field("low", description="the capability and risk tier of the canary")
    safeguards: list[str] = Field(
        default_factory=list, description="policies that must exist and be enforced"
    )
    evidence: list[Evidence] = Field(default_factory=list)


class ReleaseConfig(StrictModel):
    """One release of a model alias."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    model: str = Field(description="the alias whose calls move")
    canary: Target
    stable: Target = Field(
        default_factory=Target, description="default: the alias's other deployments, as sent"
    )
    sticky: Sticky = Field(
        "principal", description="who keeps an arm: each principal, or each agent run"
    )
    steps: list[Step] = Field(min_length=1)
    analysis: Analysis = Field(default_factory=Analysis)
    headroom: Headroom = Field(default_factory=Headroom)
    gates: Gates = Field(default_factory=Gates)

    @model_validator(mode="after")
    def _moves(self) -> ReleaseConfig:
        if self.canary.deployment is None and self.canary.system_prompt is None:
            raise ValueError(
                f"release {self.name!r}: the canary needs a deployment or a system_prompt"
            )
        if self.canary == self.stable:
            raise ValueError(f"release {self.name!r}: the canary is the stable target")
        return self
