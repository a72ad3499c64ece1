"""The SLOs as Prometheus recording and alerting rules over governd's ``governd_slo_events_total``.

For teams that alert from Prometheus rather than from governd: the same
multiwindow, multi-burn-rate pairs, with the same factors, over the counter of
good and bad events every replica exports. Error ratios are ratios of summed
``increase``s over each window -- counts of events, never averages of
shorter-window ratios (what Sloth does for its 30-day window, which weighs a
quiet hour like a busy one). They are checked with ``promtool check rules``
and, in the tests, ``promtool test rules``.
"""

from __future__ import annotations

from typing import Any

import yaml

from governd.config.slos import SloConfig
from governd.durations import format_duration
from governd.ledger.slos.burn import rules

EVENTS = "governd_slo_events_total"


def ratio_name(window: float) -> str:
    """The recorded error ratio of one window."""
    return f"governd_slo:error_ratio:rate{format_duration(window)}"


def _by(slo: SloConfig) -> str:
    return ", ".join(["slo", *slo.group_by])


def _ratio(slo: SloConfig, window: float) -> dict[str, Any]:
    span, by = format_duration(window), _by(slo)
    selector = f'{EVENTS}{{slo="{slo.name}"'
    bad = f'sum by ({by}) (increase({selector},outcome="bad"}}[{span}]))'
    total = f"sum by ({by}) (increase({selector}}}[{span}]))"
    return {"record": ratio_name(window), "expr": f"{bad} / {total}", "labels": {"slo": slo.name}}


def _remaining(slo: SloConfig) -> dict[str, Any]:
    return {
        "record": "governd_slo:error_budget_remaining:ratio",
        "expr": f'1 - {ratio_name(slo.window)}{{slo="{slo.name}"}} / {slo.budget:g}',
        "labels": {"slo": slo.name},
    }


def _burn_alert(slo: SloConfig, severity: str) -> dict[str, Any]:
    pairs = [r for r in rules(slo) if r.severity == severity]
    match = f'{{slo="{slo.name}"}}'
    terms = [
        f"({ratio_name(r.long)}{match} > {r.factor:g} * {slo.budget:g}"
        f" and {ratio_name(r.short)}{match} > {r.factor:g} * {slo.budget:g})"
        for r in pairs
    ]
    windows = ", ".join(f"{format_duration(r.long)}/{format_duration(r.short)}" for r in pairs)
    return {
        "alert": "SloErrorBudgetBurn",
        "expr": " or ".join(terms),
        "labels": {"severity": severity, "slo": slo.name, "service": "governd"},
        "annotations": {
            "summary": f"{slo.name} is burning its error budget ({severity}: {windows})",
        },
    }


def _no_data_alert(slo: SloConfig, silence: float) -> dict[str, Any]:
    selector = f'{EVENTS}{{slo="{slo.name}"}}'
    span = format_duration(silence)
    return {
        "alert": "SloNoData",
        "expr": f"(sum by (slo) (increase({selector}[{span}])) == 0) or absent({selector})",
        "for": "1m",
        "labels": {"severity": "no_data", "slo": slo.name, "service": "governd"},
        "annotations": {"summary": f"{slo.name} counted no events for {span}"},
    }


def slo_rules(slos: list[SloConfig]) -> dict[str, Any]:
    """One rule group per SLO: its windows' error ratios, then its alerts."""
    groups = []
    for slo in slos:
        windows = sorted({slo.window, *(w for r in rules(slo) for w in (r.long, r.short))})
        severities = sorted({r.severity for r in rules(slo)})
        alerts = [_burn_alert(slo, severity) for severity in severities]
        if slo.no_data is not None:
            alerts.append(_no_data_alert(slo, slo.no_data))
        groups.append(
            {
                "name": f"governd-slo-{slo.name}",
                "rules": [*(_ratio(slo, w) for w in windows), _remaining(slo), *alerts],
            }
        )
    return {"groups": groups}


def render(slos: list[SloConfig]) -> str:
    """The rules file, as YAML."""
    return yaml.safe_dump(slo_rules(slos), sort_keys=False, width=100)
