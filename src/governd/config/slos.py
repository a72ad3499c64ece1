"""The ``slos:`` part of ``governd.yaml``: objectives over ledger entries, and when they alert.

An SLO counts the entries its indicator selects (``kind`` and ``filter``) as
good or bad (``bad`` or ``good``, CEL over ``entry``; or a ready-made ``sli``)
over a rolling ``window``, per ``group_by`` value. Its alerts are the SRE
Workbook's multiwindow, multi-burn-rate pairs: each fires when both its long
and its short window burn faster than ``factor = budget_percent/100 * window /
long``, the rate that spends that share of the error budget in ``long``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from governd.config.base import StrictModel
from governd.config.slo_policies import TARGET_LABEL, SloPolicy
from governd.durations import parse_duration

Url = Annotated[str, Field(pattern=r"^https?://")]
Severity = Literal["page", "ticket"]
Sli = Literal["availability", "latency", "ttft", "cost", "refusals"]
EntryKind = Literal["model_call", "tool_call", "job"]
GroupBy = Literal["deployment", "model", "served_model", "principal", "operation"]


def _seconds(value: object) -> object:
    """A duration given as text (``5m``) in seconds; numbers pass through."""
    return parse_duration(value) if isinstance(value, str) else value


class BurnPair(StrictModel):
    """One alert rule: a long and a short window, and the budget share it guards."""

    severity: Severity
    long: float = Field(gt=0, description="long window (e.g. 1h)")
    short: float | None = Field(None, gt=0, description="short window; default long/12")
    budget_percent: float = Field(
        gt=0, le=100, description="the share of the error budget spent in `long` at the factor"
    )

    _long = field_validator("long", "short", mode="before")(_seconds)

    @property
    def short_s(self) -> float:
        """The short window in seconds."""
        return self.short if self.short is not None else self.long / 12

    def factor(self, window_s: float) -> float:
        """The burn rate this pair alerts at, for an SLO window of ``window_s``."""
        return self.budget_percent / 100 * window_s / self.long


#: The SRE Workbook's four pairs (its table 5-8, for a 30-day window).
WORKBOOK_PAIRS = (
    BurnPair(severity="page", long=3600, short=300, budget_percent=2),
    BurnPair(severity="page", long=6 * 3600, short=1800, budget_percent=5),
    BurnPair(severity="ticket", long=86400, short=7200, budget_percent=10),
    BurnPair(severity="ticket", long=3 * 86400, short=6 * 3600, budget_percent=10),
)


class SloConfig(StrictModel):
    """One objective over ledger entries."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    objective: float = Field(gt=0, lt=100, description="percent of events that must be good")
    window: float = Field(30 * 86400, gt=0, description="rolling window (e.g. 30d)")
    kind: EntryKind = Field("model_call", description="which actions it counts")
    filter: str | None = Field(None, description="CEL over `entry`: which of them it counts")
    sli: Sli | None = Field(None, description="a ready-made indicator (bad events by it)")
    threshold: float | None = Field(
        None, gt=0, description="latency/ttft: milliseconds; cost: USD per call"
    )
    bad: str | None = Field(None, description="CEL over `entry`: the event is bad")
    good: str | None = Field(None, description="CEL over `entry`: the event is good")
    group_by: list[GroupBy] = Field(default_factory=list)
    max_groups: int = Field(
        1000, ge=1, description="groups judged apart; events of further values count in `(other)`"
    )
    alerts: list[BurnPair] = Field(default_factory=lambda: list(WORKBOOK_PAIRS))
    policies: list[SloPolicy] = Field(
        default_factory=list, description="what governd does while the SLO burns"
    )
    no_data: float | None = Field(
        6 * 3600,
        gt=0,
        description="alert when nothing was counted for this long (null: never)",
    )

    _window = field_validator("window", "no_data", mode="before")(_seconds)

    @property
    def budget(self) -> float:
        """The error budget: the share of events that may be bad."""
        return (100 - self.objective) / 100

    @model_validator(mode="after")
    def _one_indicator(self) -> SloConfig:
        given = [name for name in ("sli", "bad", "good") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"slo {self.name!r}: give exactly one of `sli`, `bad` or `good` (got "
                f"{', '.join(given) or 'none'})"
            )
        needs = self.sli in ("latency", "ttft", "cost")
        if needs and self.threshold is None:
            unit = "USD" if self.sli == "cost" else "milliseconds"
            raise ValueError(f"slo {self.name!r}: sli {self.sli} needs a `threshold` in {unit}")
        if not needs and self.threshold is not None:
            raise ValueError(f"slo {self.name!r}: `threshold` is only for latency, ttft and cost")
        for pair in self.alerts:
            self._check(pair)
        for i, policy in enumerate(self.policies):
            self._targets(i, policy)
        return self

    def _targets(self, i: int, policy: SloPolicy) -> None:
        where = f"slo {self.name!r}: policies[{i}]"
        label = TARGET_LABEL.get(policy.do)
        if label and policy.target is None and label not in self.group_by:
            raise ValueError(
                f"{where} ({policy.do}) needs `{label}`, or the SLO grouped by {label}"
            )
        severities = {pair.severity for pair in self.alerts} | {"exhausted"}
        if self.no_data is not None:
            severities.add("no_data")
        if policy.when is not None and policy.when not in severities:
            raise ValueError(f"{where} waits for a {policy.when} alert, and the SLO has none")

    def _check(self, pair: BurnPair) -> None:
        factor = pair.factor(self.window)
        where = f"slo {self.name!r}: the {pair.severity} pair of {pair.long:g}s/{pair.short_s:g}s"
        if pair.long > self.window:
            raise ValueError(f"{where} has a long window beyond the SLO's window")
        if pair.short_s > pair.long:
            raise ValueError(f"{where} has a short window longer than its long one")
        if factor * self.budget >= 1:
            raise ValueError(
                f"{where} can never fire: it needs a burn rate of {factor:.3g}, and with an "
                f"objective of {self.objective:g}% the highest possible is {1 / self.budget:.3g}"
            )


class AlertsConfig(StrictModel):
    """Where SLO alerts go besides the ledger and /metrics."""

    alertmanagers: list[Url] = Field(
        default_factory=list,
        description="Alertmanager base URLs; alerts are posted to /api/v2/alerts and re-sent while firing",
    )
    webhooks: list[Url] = Field(
        default_factory=list,
        description="URLs that get each transition in Alertmanager's webhook payload format",
    )
    resend_s: float = Field(60.0, gt=0, description="seconds between re-sends of firing alerts")
    timeout_s: float = Field(5.0, gt=0, description="per notification")
    external_url: str = Field(
        "http://127.0.0.1:8420", pattern=r"^https?://", description="this server, for links"
    )
