"""SLOs evaluated on every ledger entry: counts per group, alerts on every tick.

``observe`` is the hot path, called for each entry as it is appended: the SLOs
of the entry's kind (and model, for those whose filter names it) classify it and add it to their group's pending bucket
(a few attribute updates). ``tick`` folds pending counts into the windows,
lets time pass, and evaluates each SLO's alert rules, returning the alerts
that fired or resolved since the last tick, with the counts that justified
them. The same evaluator serves the server (ticked on its clock), the
backtest (ticked through recorded time) and the tests.

``no_data`` is its own alert: an SLO that counted nothing for its ``no_data``
duration (measured from the start of the last bucket it counted in) fires it,
and the next counted entry resolves it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from governd.config.conditions import equalities
from governd.config.slos import SloConfig
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.burn import Rule, WindowBurn, fires, remaining, rules, window_burn
from governd.ledger.slos.indicators import Classify, indicator, reader
from governd.ledger.slos.windows import Counts, retention, width_of

Group = tuple[tuple[str, str], ...]
_MAX_ROUTES = 10_000
NO_DATA = "no_data"
#: The group value of events beyond an SLO's ``max_groups``.
OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class Transition:
    """An alert that fired or resolved, with the windows' counts that decided it."""

    slo: str
    group: Group
    severity: str
    state: Literal["fired", "resolved"]
    at: float
    windows: tuple[WindowBurn, ...]
    #: The share of the error budget left over the SLO's window.
    remaining: float

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for entries, webhooks and ``--json``."""
        return {
            "slo": self.slo,
            "group": dict(self.group),
            "severity": self.severity,
            "state": self.state,
            "at": self.at,
            "windows": [w.as_dict() for w in self.windows],
            "remaining": round(self.remaining, 6),
        }


@dataclass(frozen=True, slots=True)
class Delta:
    """Events of one SLO group counted in the bucket of its finest width that starts at ``start``."""

    slo: str
    group: Group
    start: float
    good: int
    bad: int


@dataclass(frozen=True, slots=True)
class Total:
    """A bucket's whole count as a shared store holds it: every replica's events in it."""

    slo: str
    group: Group
    width: int
    start: float
    good: int
    bad: int


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """Where one group of an SLO stands: its windows, budget left and firing alerts."""

    group: Group
    windows: tuple[WindowBurn, ...]
    remaining: float
    firing: tuple[str, ...]


class _Group:
    """One group's counts, its pending bucket ``[start, end)`` and the buckets folded since a drain."""

    __slots__ = ("bad", "counts", "drained", "end", "firing", "good", "last", "start", "totals")

    def __init__(self, windows: Iterable[float]) -> None:
        self.counts = Counts(windows)
        self.start = self.end = self.last = float("-inf")
        self.good = self.bad = 0
        #: Buckets counted since the last drain: (start, good, bad).
        self.drained: list[tuple[float, int, int]] = []
        #: Events counted here since start: [good, bad] (the ``governd_slo_events`` counters).
        self.totals = [0, 0]
        self.firing: set[str] = set()

    def fold(self) -> None:
        if self.good or self.bad:
            self.drained.append((self.start, self.good, self.bad))
            self.totals[0] += self.good
            self.totals[1] += self.bad
            self.last = max(self.last, self.start)
            self.good = self.bad = 0

    def count(self, ts: float, width: int, good: int, bad: int) -> None:
        """Count events at ``ts`` in the pending bucket (folding it first if ``ts`` is outside)."""
        if not self.start <= ts < self.end:
            self.fold()
            self.start = ts // width * width
            self.end = self.start + width
        self.good += good
        self.bad += bad


@dataclass(slots=True)
class _Slo:
    config: SloConfig
    classify: Classify
    #: Each severity's rules, and the windows they read (a transition records those).
    severities: dict[str, tuple[list[Rule], list[float]]]
    windows: list[float]
    width: int
    group_of: Callable[[LedgerEntry], Group]
    #: When it was created: the start of its silence until it counts something.
    started: float
    #: The models its filter requires, if it names them (``entry.model == ...``): its index.
    models: frozenset[str] | None
    groups: dict[Group, _Group] = field(default_factory=dict)
    no_data: bool = False
    #: The one group of an SLO without ``group_by``, once it has counted something.
    single: _Group | None = None

    def group(self, key: Group) -> _Group:
        found = self.groups.get(key)
        if found is None:
            if len(self.groups) >= self.config.max_groups:
                # Bounded memory: a value beyond the cap counts with the others beyond it.
                key = tuple((name, OTHER) for name in self.config.group_by)
                found = self.groups.get(key)
                if found is not None:
                    return found
            found = self.groups[key] = _Group(self.windows)
            if not self.config.group_by:
                self.single = found
        return found


class SloEvaluator:
    """Every SLO of a config, counted from entries and judged on ticks."""

    def __init__(self, slos: Sequence[SloConfig], now: float) -> None:
        self._slos = {slo.name: _compile(slo, now) for slo in slos}
        # Which SLOs may count an entry, by its kind and model: filled as pairs are first seen.
        self._routes: dict[tuple[str, str | None], list[_Slo]] = {}
        #: How often ``tick`` should run: the finest bucket of any SLO.
        self.interval = min((s.width for s in self._slos.values()), default=60)

    @property
    def names(self) -> list[str]:
        """The SLOs, in config order."""
        return list(self._slos)

    def config(self, name: str) -> SloConfig:
        """An SLO's definition (``KeyError`` if none has that name)."""
        return self._slos[name].config

    def observe(self, entry: LedgerEntry) -> None:
        """Count ``entry`` in every SLO whose indicator selects it (the hot path: keep it lean)."""
        ts = entry.ts
        route = self._routes.get((entry.kind, entry.model))
        if route is None:
            route = self._route(entry.kind, entry.model)
        for slo in route:
            verdict = slo.classify(entry)
            if verdict < 0:
                continue
            group = slo.single or slo.group(slo.group_of(entry))
            group.count(ts, slo.width, 1 - verdict, verdict)

    def _route(self, kind: str, model: str | None) -> list[_Slo]:
        if len(self._routes) >= _MAX_ROUTES:
            self._routes.clear()
        found = [
            slo
            for slo in self._slos.values()
            if slo.config.kind == kind and (slo.models is None or (model or "") in slo.models)
        ]
        self._routes[(kind, model)] = found
        return found

    def add(self, name: str, ts: float, good: int, bad: int, group: Group = ()) -> None:
        """Count ``good`` and ``bad`` events of one SLO at ``ts`` (a backtest's recorded counts)."""
        slo = self._slos[name]
        slo.group(group).count(ts, slo.width, good, bad)

    def drain(self) -> list[Delta]:
        """What was counted since the last drain, per group and finest bucket (no longer pending)."""
        out: list[Delta] = []
        for name, slo in self._slos.items():
            for key, group in slo.groups.items():
                group.fold()
                out.extend(Delta(name, key, start, g, b) for start, g, b in group.drained)
                group.drained.clear()
        return out

    def apply(self, deltas: Iterable[Delta]) -> None:
        """Add drained counts into the windows (one process: its own counts are all there are)."""
        for d in deltas:
            self._slos[d.slo].group(d.group).counts.add(d.start, d.good, d.bad)

    def load(self, totals: Iterable[Total]) -> None:
        """Set buckets to the totals a shared store holds (every replica's counts)."""
        for t in totals:
            slo = self._slos.get(t.slo)
            if slo is None:
                continue  # an SLO another replica's config has
            group = slo.group(t.group)
            group.counts.put(t.width, t.start, t.good, t.bad)
            if t.width == slo.width and (t.good or t.bad):
                group.last = max(group.last, t.start)

    def widths(self, name: str) -> dict[int, int]:
        """The bucket widths an SLO counts in, with the seconds of history each keeps."""
        return retention(self._slos[name].windows)

    def restore(self, firing: Iterable[tuple[str, Group, str]]) -> None:
        """Take up alerts already firing (slo, group, severity): they resolve, never fire again."""
        for name, key, severity in firing:
            slo = self._slos.get(name)
            if slo is None:
                continue
            if severity == NO_DATA:
                slo.no_data = True
            else:
                slo.group(key).firing.add(severity)

    def judge(self, now: float) -> list[Transition]:
        """Let time pass to ``now`` and say which alerts changed since the last judgement."""
        out: list[Transition] = []
        for slo in self._slos.values():
            for key, group in slo.groups.items():
                group.counts.advance(now)
                out.extend(_judge(slo, key, group, now))
            out.extend(_no_data(slo, now))
        return out

    def tick(self, now: float) -> list[Transition]:
        """Fold what was counted, let time pass to ``now``, and say which alerts changed."""
        self.apply(self.drain())
        return self.judge(now)

    def totals(self, name: str) -> list[tuple[Group, int, int]]:
        """Each group's (good, bad) events counted by this process since it started."""
        return [
            (key, g.totals[0], g.totals[1]) for key, g in sorted(self._slos[name].groups.items())
        ]

    def silent(self, name: str) -> bool:
        """Whether an SLO's no-data alert fires (it counted nothing for its ``no_data``)."""
        return self._slos[name].no_data

    def status(self, name: str) -> list[GroupStatus]:
        """Each group of an SLO as of the last tick (``KeyError`` if no SLO has that name)."""
        slo = self._slos[name]
        budget = slo.config.budget
        return [
            GroupStatus(
                key,
                tuple(window_burn(group.counts.window, w, budget) for w in slo.windows),
                remaining(group.counts.window, slo.config.window, budget),
                tuple(sorted(group.firing)),
            )
            for key, group in sorted(slo.groups.items())
        ]


def _compile(slo: SloConfig, now: float) -> _Slo:
    severities: dict[str, tuple[list[Rule], list[float]]] = {}
    for rule in rules(slo):
        own, read = severities.setdefault(rule.severity, ([], []))
        own.append(rule)
        read[:] = sorted({*read, rule.long, rule.short})
    windows = sorted({slo.window, *(w for _, read in severities.values() for w in read)})
    readers = [(name, reader(name)) for name in slo.group_by]
    return _Slo(
        config=slo,
        classify=indicator(slo),
        severities=severities,
        windows=windows,
        width=min(width_of(w) for w in windows),
        group_of=lambda e: tuple((name, str(read(e))) for name, read in readers),
        started=now,
        models=equalities(slo.filter, ("entry.model",)).get("entry.model") if slo.filter else None,
    )


def _judge(slo: _Slo, key: Group, group: _Group, now: float) -> list[Transition]:
    budget, counts = slo.config.budget, group.counts.window
    out = []
    for severity, (own, windows) in slo.severities.items():
        firing = any(fires(rule, counts, budget) for rule in own)
        if firing == (severity in group.firing):
            continue
        if firing:
            group.firing.add(severity)
        else:
            group.firing.discard(severity)
        out.append(
            Transition(
                slo.config.name,
                key,
                severity,
                "fired" if firing else "resolved",
                now,
                tuple(window_burn(counts, w, budget) for w in windows),
                remaining(counts, slo.config.window, budget),
            )
        )
    return out


def _no_data(slo: _Slo, now: float) -> list[Transition]:
    limit = slo.config.no_data
    # The start of the newest bucket any group counted in: silence is measured from there.
    last = max((g.last for g in slo.groups.values()), default=slo.started)
    silent = limit is not None and now - max(last, slo.started) >= limit
    if silent == slo.no_data:
        return []
    slo.no_data = silent
    state: Literal["fired", "resolved"] = "fired" if silent else "resolved"
    return [Transition(slo.config.name, (), NO_DATA, state, now, (), 1.0)]
