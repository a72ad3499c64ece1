"""The ``governd_slo_*`` metrics, read from the SLO evaluator at scrape time.

Every family has the labels ``slo`` and each ``group_by`` field (empty where an
SLO does not group by it), so the series of one SLO sum like any other.
``governd_slo_events_total`` counts this replica's events (Prometheus sums
replicas); burn rates, budget left and alert states are over every replica's
counts, as the evaluator judged them at its last tick.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from governd.config.slos import GroupBy
from governd.durations import format_duration
from governd.ledger.slos.evaluator import NO_DATA, Group, SloEvaluator

#: The group labels every family carries.
GROUP_LABELS = get_args(GroupBy)


def _group(group: Group) -> list[str]:
    found = dict(group)
    return [found.get(name, "") for name in GROUP_LABELS]


class SloCollector(Collector):
    """Yields the SLO families of one evaluator."""

    def __init__(self, evaluator: SloEvaluator) -> None:
        self._evaluator = evaluator

    def collect(self) -> Iterable[Metric]:
        group_labels = list(GROUP_LABELS)
        objective = GaugeMetricFamily(
            "governd_slo_objective_ratio", "The share of events that must be good", labels=["slo"]
        )
        events = CounterMetricFamily(
            "governd_slo_events",
            "Events an SLO counted on this replica, by outcome",
            labels=["slo", *group_labels, "outcome"],
        )
        burn = GaugeMetricFamily(
            "governd_slo_burn_rate",
            "Bad share of a window's events over the error budget (1: spending it exactly)",
            labels=["slo", *group_labels, "window"],
        )
        remaining = GaugeMetricFamily(
            "governd_slo_error_budget_remaining_ratio",
            "Share of the error budget left over the SLO's window (negative: overspent)",
            labels=["slo", *group_labels],
        )
        firing = GaugeMetricFamily(
            "governd_slo_alert_firing",
            "1 while an SLO alert fires",
            labels=["slo", *group_labels, "severity"],
        )
        ev = self._evaluator
        for name in ev.names:
            cfg = ev.config(name)
            objective.add_metric([name], cfg.objective / 100)
            for group, good, bad in ev.totals(name):
                events.add_metric([name, *_group(group), "good"], good)
                events.add_metric([name, *_group(group), "bad"], bad)
            severities = sorted({pair.severity for pair in cfg.alerts})
            for status in ev.status(name):
                labels = [name, *_group(status.group)]
                for w in status.windows:
                    burn.add_metric([*labels, format_duration(w.window)], w.burn)
                remaining.add_metric(labels, status.remaining)
                for severity in severities:
                    firing.add_metric([*labels, severity], float(severity in status.firing))
            if cfg.no_data is not None:
                firing.add_metric([name, *_group(()), NO_DATA], float(ev.silent(name)))
        yield from (objective, events, burn, remaining, firing)
