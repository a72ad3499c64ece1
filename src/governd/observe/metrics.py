"""Prometheus metrics at ``/metrics``, fed by every settled action.

Labels stop at the principal tree (org/team/project), never keys or runs, so
the number of series stays bounded by the config. Updating a metric is a
plain dict update on the event loop's thread (no locks, no label checks: a
tenth of a proxied request's CPU went to ``prometheus_client``'s child
lookups and locks); the families are built at scrape time. It never blocks or
raises into the request path.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from governd.ledger.entries import LedgerEntry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_WAIT = (1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400)

Sample = tuple[dict[str, str], float]


class _Counter:
    """A counter family: label values -> total."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def family(self) -> Metric:
        out = CounterMetricFamily(self.name, self.doc, labels=list(self.labels))
        for key, value in self.values.items():
            out.add_metric(list(key), value)
        return out


class _Histogram:
    """A histogram family: label values -> per-bucket counts, sum."""

    def __init__(
        self, name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
    ) -> None:
        self.name, self.doc, self.labels, self.buckets = name, doc, labels, buckets
        self.values: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}

    def observe(self, key: tuple[str, ...], value: float) -> None:
        counts, total = self.values.get(key) or self.values.setdefault(
            key, ([0] * (len(self.buckets) + 1), [0.0])
        )
        counts[bisect.bisect_left(self.buckets, value)] += 1
        total[0] += value

    def family(self) -> Metric:
        out = HistogramMetricFamily(self.name, self.doc, labels=list(self.labels))
        bounds = [str(float(b)) for b in self.buckets] + ["+Inf"]
        for key, (counts, total) in self.values.items():
            cumulative, running = [], 0
            for bound, n in zip(bounds, counts, strict=True):
                running += n
                cumulative.append((bound, running))
            out.add_metric(list(key), cumulative, total[0])
        return out


class _Families(Collector):
    """Everything ``Metrics`` counts, turned into families when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterable[Metric]:
        m = self._m
        for family in (*m.counters, *m.histograms):
            yield family.family()
        ratio = GaugeMetricFamily(
            "governd_prefix_cache_hit_ratio",
            "Cached share of input tokens, since start",
            labels=["model"],
        )
        for model, (read, cached) in m.prefix.items():
            if read:
                ratio.add_metric([model], cached / read)
        yield ratio


class _Live(Collector):
    """Gauges read at scrape time from live state (in flight, queued, ledger lag, budgets)."""

    def __init__(self, sources: dict[str, tuple[str, Callable[[], Iterable[Sample]]]]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        for name, (doc, read) in self._sources.items():
            labels: list[str] | None = None
            family: GaugeMetricFamily | None = None
            for values, value in read():
                if family is None:
                    labels = list(values)
                    family = GaugeMetricFamily(name, doc, labels=labels)
                family.add_metric([values[k] for k in labels or []], value)
            yield family or GaugeMetricFamily(name, doc)


class Metrics:
    """The metric families governd exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = _Counter(
            "governd_requests", "Actions settled", ("principal", "model", "operation", "status")
        )
        self.decisions = _Counter("governd_decisions", "Admission decisions", ("effect",))
        self.tokens = _Counter("governd_tokens", "Tokens consumed", ("principal", "model", "type"))
        self.cost = _Counter("governd_cost_usd", "Cost in US dollars", ("principal", "model"))
        self.device_seconds = _Counter(
            "governd_job_device_seconds",
            "Accelerator device-seconds used by jobs",
            ("principal", "queue", "flavor"),
        )
        self.latency = _Histogram(
            "governd_request_duration_seconds",
            "Time from request to settlement",
            ("model", "stream"),
            _LATENCY,
        )
        self.ttft = _Histogram(
            "governd_time_to_first_token_seconds",
            "Time to the first byte of the reply",
            ("model",),
            _LATENCY,
        )
        self.queue_wait = _Histogram(
            "governd_job_queue_wait_seconds", "Time jobs waited in their queue", ("queue",), _WAIT
        )
        self.counters = (self.requests, self.decisions, self.tokens, self.cost, self.device_seconds)
        self.histograms = (self.latency, self.ttft, self.queue_wait)
        #: model -> (input tokens, cached input tokens), since start
        self.prefix: dict[str, tuple[int, int]] = {}
        self.registry.register(_Families(self))

    def live(self, sources: dict[str, tuple[str, Callable[[], Iterable[Sample]]]]) -> None:
        """Register gauges read from live state at scrape time."""
        self.registry.register(_Live(sources))

    def observe(self, entry: LedgerEntry) -> None:
        """Account for one settled action."""
        model = entry.served_model or entry.model or ""
        who = entry.principal or "(unauthenticated)"
        self.requests.inc((who, model, entry.operation, str(entry.status)))
        self.decisions.inc((entry.decision,))
        if entry.kind == "job":
            self._job(entry, who)
            return
        if entry.kind != "model_call" or (entry.status >= 400 and not entry.input_tokens):
            return
        for kind, n in (
            ("input", entry.input_tokens),
            ("cached", entry.cached_tokens),
            ("output", entry.output_tokens),
        ):
            if n:
                self.tokens.inc((who, model, kind), n)
        if entry.cost_usd:
            self.cost.inc((who, model), entry.cost_usd)
        self.latency.observe((model, "true" if entry.stream else "false"), entry.latency_ms / 1000)
        if entry.ttft_ms is not None:
            self.ttft.observe((model,), entry.ttft_ms / 1000)
        read, cached = self.prefix.get(model, (0, 0))
        self.prefix[model] = (read + entry.input_tokens, cached + entry.cached_tokens)

    def _job(self, entry: LedgerEntry, who: str) -> None:
        if entry.decision != "allow":
            return
        signals = orjson.loads(entry.signals or "{}")
        queue, flavor = entry.model or "", entry.served_model or ""
        self.device_seconds.inc((who, queue, flavor), signals.get("device_seconds", 0.0))
        self.queue_wait.observe((queue,), signals.get("queue_wait_s", 0.0))
        if entry.cost_usd:
            self.cost.inc((who, flavor), entry.cost_usd)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
