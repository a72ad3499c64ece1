"""``slos:`` in governd.yaml: what loads, and each mistake named at its key."""

from __future__ import annotations

import pytest

from governd.config import ConfigError, parse_config
from governd.config.slos import WORKBOOK_PAIRS


def test_an_slo_gets_the_workbooks_pairs_and_their_factors() -> None:
    cfg = parse_config("slos: [{name: a, objective: 99.9, sli: availability}]\n")
    (slo,) = cfg.slos
    assert slo.window == 30 * 86400 and slo.kind == "model_call" and slo.no_data == 6 * 3600
    assert slo.budget == pytest.approx(0.001)
    assert [round(p.factor(slo.window), 3) for p in slo.alerts] == [14.4, 6.0, 3.0, 1.0]
    assert [p.short_s for p in slo.alerts] == [300, 1800, 7200, 21600]
    assert tuple(slo.alerts) == WORKBOOK_PAIRS


def test_other_windows_derive_their_factors() -> None:
    text = "slos: [{name: a, objective: 99, sli: availability, window: 7d}]\n"
    (slo,) = parse_config(text).slos
    assert [round(p.factor(slo.window), 4) for p in slo.alerts] == [3.36, 1.4, 0.7, 0.2333]


@pytest.mark.parametrize(
    ("slo", "path", "fragment"),
    [
        ("{name: a, objective: 99}", "slos.0", "exactly one of `sli`, `bad` or `good` (got none)"),
        (
            "{name: a, objective: 99, sli: availability, bad: 'true'}",
            "slos.0",
            "(got sli, bad)",
        ),
        ("{name: a, objective: 99, sli: latency}", "slos.0", "needs a `threshold` in milliseconds"),
        ("{name: a, objective: 99, sli: cost}", "slos.0", "needs a `threshold` in USD"),
        ("{name: a, objective: 99, sli: refusals, threshold: 3}", "slos.0", "only for latency"),
        ("{name: a, objective: 100, sli: availability}", "slos.0.objective", "less than 100"),
        ("{name: A b, objective: 99, sli: availability}", "slos.0.name", "should match"),
        ("{name: a, objective: 99, sli: availability, window: 3x}", "slos.0.window", "30d"),
        (
            "{name: a, objective: 50, sli: availability}",
            "slos.0",
            "can never fire: it needs a burn rate of 14.4",
        ),
        (
            "{name: a, objective: 99, sli: availability, window: 1h}",
            "slos.0",
            "long window beyond the SLO's window",
        ),
        (
            "{name: a, objective: 99, bad: 'entry.nope > 1'}",
            "slos.0.bad",
            "docs/slos.md",
        ),
        ("{name: a, objective: 99, good: 'entry.status'}", "slos.0.good", "must be a boolean"),
        ("{name: a, objective: 99, sli: ttft, threshold: 1, filter: '('}", "slos.0.filter", ""),
        ("{name: a, objective: 99, sli: availability, group_by: [team]}", "slos.0.group_by.0", ""),
    ],
)
def test_a_bad_slo_is_named_at_its_key(slo: str, path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"slos:\n  - {slo}\n")
    problems = {(p.path, p.message) for p in info.value.problems}
    assert any(at == path and fragment in message for at, message in problems), problems


def test_slo_names_are_unique() -> None:
    text = (
        "slos:\n"
        "  - {name: a, objective: 99, sli: availability}\n"
        "  - {name: a, objective: 99, sli: refusals}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert [(p.path, p.line, p.message) for p in info.value.problems] == [
        ("slos.1.name", 3, "duplicate slo name 'a'")
    ]


POLICY_BASE = """
principals: {org: acme, teams: {ops: {projects: {web: {}}}}}
upstreams: {sim: {kind: sim}}
models:
  chat: {deployments: [{upstream: sim, model: s}]}
  small: {deployments: [{upstream: sim, model: t}]}
slos:
  - name: a
    objective: 99
    sli: availability
    group_by: [deployment]
    policies: [%s]
"""


@pytest.mark.parametrize(
    ("policy", "path", "fragment"),
    [
        (
            "{when: page, do: shift_route, deployment: sim/x}",
            "slos.0.policies.0.deployment",
            "unknown deployment 'sim/x'",
        ),
        (
            "{when: page, do: degrade, model: nope, to: small}",
            "slos.0.policies.0.model",
            "unknown model 'nope'",
        ),
        (
            "{when: page, do: degrade, model: chat, to: nope}",
            "slos.0.policies.0.to",
            "unknown model 'nope'",
        ),
        (
            "{when: page, do: lower_priority, principal: dev, to: batch}",
            "slos.0.policies.0.principal",
            "unknown principal 'dev'",
        ),
        (
            "{when: page, do: lower_priority, principal: ops/web, to: low}",
            "slos.0.policies.0",
            "critical, standard, batch or sheddable",
        ),
        (
            "{when: page, do: degrade, to: small}",
            "slos.0",
            "needs `model`, or the SLO grouped by model",
        ),
        ("{when: page, do: shift_route, hold: 5x}", "slos.0.policies.0.hold", "30d"),
    ],
)
def test_a_policy_naming_what_does_not_exist_is_named_at_its_key(
    policy: str, path: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(POLICY_BASE % policy)
    problems = {(p.path, p.message) for p in info.value.problems}
    assert any(at == path and fragment in message for at, message in problems), problems


def test_a_policy_that_can_act_loads() -> None:
    cfg = parse_config(
        POLICY_BASE
        % "{when: page, do: shift_route}, {remaining_below: 0.5, do: lower_priority, principal: ops/web, to: batch, hold: 10m}"
    )
    first, second = cfg.slos[0].policies
    assert (first.do, first.target, first.hold) == ("shift_route", None, 300)
    assert (second.target, second.hold, second.describe()) == ("ops/web", 600, "budget below 50%")
