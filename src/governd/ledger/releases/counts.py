"""What each arm of a release did, counted from the entries appended while it runs.

A model call served under a release carries ``{"release": {"name", "epoch",
"arm"}}`` in its signals: ``ReleaseCounts.observe`` (a recorder observer)
adds it to its arm's counts of the release's current *epoch* (the step at
which its weight was last set: evidence is gathered anew at every weight).
The tool calls of an agent run one of its model calls put on an arm count
for that arm too. Counts are additive, so replicas add theirs into shared
rows (``store.ReleaseStore.exchange``) and read back the same totals.

Latencies are counted in buckets ~4% wide (16 per doubling), which is all a
p95 and a rank test need.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from governd.ledger.entries import LedgerEntry

Arm = Literal["stable", "canary"]
ARMS: tuple[Arm, ...] = ("stable", "canary")
#: A release's verdict on an entry: -1 not counted, 0 good, 1 bad (an SLO's indicator).
Classify = Callable[[LedgerEntry], int]
#: (release, epoch, arm, metric, bucket): one counter; bucket -1 for a scalar.
CountKey = tuple[str, int, str, str, int]
_PER_DOUBLING = 16
_MAX_RUNS = 100_000


def bucket_of(ms: float) -> int:
    """The histogram bucket of a duration in milliseconds."""
    return int(math.log2(1.0 + max(0.0, ms)) * _PER_DOUBLING)


def value_of(bucket: int) -> float:
    """The duration a bucket stands for (its midpoint, in milliseconds)."""
    return float(2 ** ((bucket + 0.5) / _PER_DOUBLING) - 1.0)


def default_classify(entry: LedgerEntry) -> int:
    """Without an SLO: a served call is bad when it failed on governd's or an upstream's side."""
    if entry.decision == "deny":
        return -1
    return 1 if entry.status >= 500 else 0


def signals_of(name: str, epoch: int, arm: Arm) -> dict[str, Any]:
    """The part of a model call's signals that names its release and arm."""
    return {"release": {"name": name, "epoch": epoch, "arm": arm}}


@dataclass(slots=True)
class Tally:
    """One arm's totals in one epoch, across replicas."""

    events: float = 0.0
    refused: float = 0.0
    judged: float = 0.0
    bad: float = 0.0
    ok: float = 0.0
    cost: float = 0.0
    cost_sq: float = 0.0
    latency: dict[int, float] = field(default_factory=dict)
    ttft: dict[int, float] = field(default_factory=dict)
    tools: float = 0.0
    risk: float = 0.0

    def add(self, metric: str, bucket: int, value: float) -> None:
        """Add one stored counter."""
        if metric in ("latency", "ttft"):
            hist: dict[int, float] = getattr(self, metric)
            hist[bucket] = hist.get(bucket, 0.0) + value
        else:
            setattr(self, metric, getattr(self, metric) + value)


Tallies = dict[tuple[str, int, Arm], Tally]


def tallies(rows: Iterable[tuple[str, int, str, str, int, float]]) -> Tallies:
    """Stored rows as one ``Tally`` per (release, epoch, arm)."""
    out: Tallies = {}
    for release, epoch, arm, metric, bucket, value in rows:
        side: Arm = "canary" if arm == "canary" else "stable"
        out.setdefault((release, epoch, side), Tally()).add(metric, bucket, value)
    return out


class ReleaseCounts:
    """This replica's counts since its last exchange."""

    def __init__(self) -> None:
        self._pending: dict[CountKey, float] = {}
        self._classify: dict[str, Classify] = {}
        #: Agent runs on an arm: run id -> (release, epoch, arm).
        self._runs: dict[str, tuple[str, int, str]] = {}

    def judge_with(self, release: str, classify: Classify) -> None:
        """Judge a release's calls good or bad by ``classify`` (its SLO's indicator)."""
        self._classify[release] = classify

    def observe(self, entry: LedgerEntry) -> None:
        """Count an appended entry if it belongs to a release (a recorder observer)."""
        if entry.kind == "model_call":
            if entry.signals and '"release"' in entry.signals:
                part = orjson.loads(entry.signals).get("release")
                if isinstance(part, dict):
                    self._model_call(entry, str(part["name"]), int(part["epoch"]), part["arm"])
        elif entry.kind == "tool_call" and entry.run_id in self._runs:
            self._tool_call(entry, *self._runs[entry.run_id])

    def _model_call(self, entry: LedgerEntry, name: str, epoch: int, arm: str) -> None:
        if entry.run_id:
            if len(self._runs) >= _MAX_RUNS:
                self._runs.clear()
            self._runs[entry.run_id] = (name, epoch, arm)
        add = self._adder(name, epoch, arm)
        add("events", -1, 1.0)
        if entry.decision == "deny":
            add("refused", -1, 1.0)
        verdict = self._classify.get(name, default_classify)(entry)
        if verdict >= 0:
            add("judged", -1, 1.0)
            add("bad", -1, float(verdict))
        if entry.decision != "deny" and entry.status < 400:
            add("ok", -1, 1.0)
            add("cost", -1, entry.cost_usd)
            add("cost_sq", -1, entry.cost_usd * entry.cost_usd)
            add("latency", bucket_of(entry.latency_ms), 1.0)
            if entry.ttft_ms:
                add("ttft", bucket_of(entry.ttft_ms), 1.0)

    def _tool_call(self, entry: LedgerEntry, name: str, epoch: int, arm: str) -> None:
        add = self._adder(name, epoch, arm)
        add("tools", -1, 1.0)
        risk = orjson.loads(entry.signals).get("risk") if entry.signals else None
        if isinstance(risk, dict):
            add("risk", -1, float(len(risk.get("events") or ())))

    def _adder(self, name: str, epoch: int, arm: str) -> Callable[[str, int, float], None]:
        pending = self._pending

        def add(metric: str, bucket: int, value: float) -> None:
            key = (name, epoch, arm, metric, bucket)
            pending[key] = pending.get(key, 0.0) + value

        return add

    def drain(self) -> dict[CountKey, float]:
        """What was counted since the last drain (no longer pending)."""
        out, self._pending = self._pending, {}
        return out
