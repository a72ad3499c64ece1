"""Prometheus metrics at ``/metrics``, fed by every settled action.

Labels stop at the principal tree (org/team/project), never keys or runs, so
the number of series stays bounded by the config. Updating a metric is an
in-memory increment: it never blocks or raises into the request path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from governd.ledger.entries import LedgerEntry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

Sample = tuple[dict[str, str], float]


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
        r = self.registry
        self.requests = Counter(
            "governd_requests",
            "Actions settled",
            ["principal", "model", "operation", "status"],
            registry=r,
        )
        self.decisions = Counter("governd_decisions", "Admission decisions", ["effect"], registry=r)
        self.tokens = Counter(
            "governd_tokens", "Tokens consumed", ["principal", "model", "type"], registry=r
        )
        self.cost = Counter(
            "governd_cost_usd", "Cost in US dollars", ["principal", "model"], registry=r
        )
        self.latency = Histogram(
            "governd_request_duration_seconds",
            "Time from request to settlement",
            ["model", "stream"],
            buckets=_LATENCY,
            registry=r,
        )
        self.ttft = Histogram(
            "governd_time_to_first_token_seconds",
            "Time to the first byte of the reply",
            ["model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.cache_ratio = Gauge(
            "governd_prefix_cache_hit_ratio",
            "Cached share of input tokens, since start",
            ["model"],
            registry=r,
        )
        self.device_seconds = Counter(
            "governd_job_device_seconds",
            "Accelerator device-seconds used by jobs",
            ["principal", "queue", "flavor"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "governd_job_queue_wait_seconds",
            "Time jobs waited in their queue",
            ["queue"],
            buckets=(1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400),
            registry=r,
        )
        self._input: dict[str, int] = {}
        self._cached: dict[str, int] = {}

    def live(self, sources: dict[str, tuple[str, Callable[[], Iterable[Sample]]]]) -> None:
        """Register gauges read from live state at scrape time."""
        self.registry.register(_Live(sources))

    def observe(self, entry: LedgerEntry) -> None:
        """Account for one settled action."""
        model = entry.served_model or entry.model or ""
        who = entry.principal or "(unauthenticated)"
        self.requests.labels(who, model, entry.operation, str(entry.status)).inc()
        self.decisions.labels(entry.decision).inc()
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
                self.tokens.labels(who, model, kind).inc(n)
        if entry.cost_usd:
            self.cost.labels(who, model).inc(entry.cost_usd)
        self.latency.labels(model, "true" if entry.stream else "false").observe(
            entry.latency_ms / 1000
        )
        if entry.ttft_ms is not None:
            self.ttft.labels(model).observe(entry.ttft_ms / 1000)
        self._input[model] = self._input.get(model, 0) + entry.input_tokens
        self._cached[model] = self._cached.get(model, 0) + entry.cached_tokens
        if self._input[model]:
            self.cache_ratio.labels(model).set(self._cached[model] / self._input[model])

    def _job(self, entry: LedgerEntry, who: str) -> None:
        if entry.decision != "allow":
            return
        signals = orjson.loads(entry.signals or "{}")
        queue, flavor = entry.model or "", entry.served_model or ""
        self.device_seconds.labels(who, queue, flavor).inc(signals.get("device_seconds", 0.0))
        self.queue_wait.labels(queue).observe(signals.get("queue_wait_s", 0.0))
        if entry.cost_usd:
            self.cost.labels(who, flavor).inc(entry.cost_usd)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
