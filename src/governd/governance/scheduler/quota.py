"""Quota arithmetic in Kueue's terms: nominal, borrowing and lending limits, cohorts, shares.

For queue q and flavor f, ``guaranteed`` is the part of q's nominal quota it
does not lend (nominal - lending_limit, or 0 with no lending limit) and
``lendable`` the rest. A cohort's capacity is the sum of its members'
lendable quota; its use is what its members use beyond their guaranteed
part. q may use its unused guaranteed quota plus whatever the cohort has
left, capped by nominal + borrowing_limit. A queue without a cohort has its
nominal quota and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from governd.config.compute import CohortConfig, QueueConfig

#: Kueue's DRS scale: shares are per-mille of the cohort's lendable capacity.
_SHARE_SCALE = 1000.0


class Quotas:
    """Usage per queue and flavor, and the cohort totals derived from it (mutable within a cycle)."""

    def __init__(
        self, queues: Mapping[str, QueueConfig], cohorts: Mapping[str, CohortConfig]
    ) -> None:
        self.queues = queues
        self.cohorts = cohorts
        self.usage: dict[str, dict[str, int]] = {q: defaultdict(int) for q in queues}
        self.members: dict[str, list[str]] = defaultdict(list)
        for name, q in queues.items():
            if q.cohort is not None:
                self.members[q.cohort].append(name)
        self._capacity: dict[tuple[str, str], int] = {}
        self._cohort_used: dict[tuple[str, str], int] = defaultdict(int)

    def nominal(self, queue: str, flavor: str) -> int:
        """The queue's own quota of ``flavor`` (0 when it has none)."""
        quota = self.queues[queue].quotas.get(flavor)
        return quota.nominal if quota is not None else 0

    def _guaranteed(self, queue: str, flavor: str) -> int:
        quota = self.queues[queue].quotas.get(flavor)
        if quota is None or quota.lending_limit is None:
            return 0
        return quota.nominal - quota.lending_limit

    def _cohort_capacity(self, cohort: str, flavor: str) -> int:
        key = (cohort, flavor)
        if key not in self._capacity:
            self._capacity[key] = sum(
                self.nominal(m, flavor) - self._guaranteed(m, flavor) for m in self.members[cohort]
            )
        return self._capacity[key]

    def available(self, queue: str, flavor: str) -> int:
        """How many more units of ``flavor`` the queue may use now."""
        q = self.queues[queue]
        quota = q.quotas.get(flavor)
        if quota is None:
            return 0
        used = self.usage[queue][flavor]
        if q.cohort is None:
            return max(0, quota.nominal - used)
        guaranteed = self._guaranteed(queue, flavor)
        free_in_cohort = (
            self._cohort_capacity(q.cohort, flavor) - self._cohort_used[(q.cohort, flavor)]
        )
        room = max(0, guaranteed - used) + max(0, free_in_cohort)
        if quota.borrowing_limit is not None:
            room = min(room, quota.nominal + quota.borrowing_limit - used)
        return max(0, room)

    def add(self, queue: str, flavor: str, count: int) -> None:
        """Charge (or with a negative count, release) ``count`` units to the queue."""
        cohort = self.queues[queue].cohort
        usage = self.usage[queue]
        if cohort is not None:
            guaranteed = self._guaranteed(queue, flavor)
            before = max(0, usage[flavor] - guaranteed)
            after = max(0, usage[flavor] + count - guaranteed)
            self._cohort_used[(cohort, flavor)] += after - before
        usage[flavor] += count

    def borrowing(self, queue: str, flavor: str) -> bool:
        """Whether the queue uses more of ``flavor`` than its nominal quota."""
        return self.usage[queue][flavor] > self.nominal(queue, flavor)

    def share(self, queue: str, extra: tuple[str, int] | None = None) -> float:
        """The queue's weighted dominant share of borrowed quota (optionally with ``extra`` added)."""
        q = self.queues[queue]
        if q.cohort is None:
            return 0.0
        usage = dict(self.usage[queue])
        if extra is not None:
            usage[extra[0]] = usage.get(extra[0], 0) + extra[1]
        shares = (self._borrowed_share(queue, q.cohort, f, used) for f, used in usage.items())
        return max(shares, default=0.0) / q.weight

    def _borrowed_share(self, queue: str, cohort: str, flavor: str, used: int) -> float:
        borrowed = used - self.nominal(queue, flavor)
        capacity = self._cohort_capacity(cohort, flavor)
        return borrowed * _SHARE_SCALE / capacity if borrowed > 0 and capacity else 0.0

    def fair_sharing(self, queue: str) -> bool:
        """Whether the queue's cohort orders and reclaims by share."""
        cohort = self.queues[queue].cohort
        return cohort is not None and self.cohorts[cohort].fair_sharing
