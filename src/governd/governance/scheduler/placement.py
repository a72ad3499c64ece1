"""Where a job's units go: all on one node (a gang gets all its units or none), one NVLink domain if possible.

Nodes are bucketed by how many free units of a flavor they have, so a
placement looks at the fullest node that still fits (best fit, which keeps
whole nodes free for large jobs) instead of scanning every node.
"""

from __future__ import annotations

from collections import defaultdict

from governd.governance.scheduler.model import Unit

#: Nodes of one bucket examined for a single-domain fit before settling for any fit.
_DOMAIN_PROBES = 16


class FreeUnits:
    """The free units of every flavor, by node and NVLink domain (mutable within a cycle)."""

    def __init__(self, units: tuple[Unit, ...], held: set[str]) -> None:
        self.unit = {u.id: u for u in units}
        # flavor -> node -> domain -> free unit ids
        self._free: dict[str, dict[str, dict[str, list[str]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(list))
        )
        self._count: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        # flavor -> free count -> nodes with exactly that many free units
        self._buckets: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.total: dict[str, int] = defaultdict(int)
        for u in units:
            if u.id not in held:
                self._free[u.flavor][u.node][u.domain].append(u.id)
                self._count[u.flavor][u.node] += 1
                self.total[u.flavor] += 1
        for flavor, nodes in self._count.items():
            for node, n in nodes.items():
                self._buckets[flavor][n].add(node)

    def find(self, flavor: str, count: int) -> tuple[str, ...] | None:
        """``count`` free units of ``flavor`` on one node, in one NVLink domain when one fits; or None."""
        if self.total[flavor] < count:
            return None
        buckets = self._buckets[flavor]
        fallback: str | None = None
        for free in sorted(k for k, nodes in buckets.items() if k >= count and nodes):
            for probe, node in enumerate(buckets[free]):
                domains = self._free[flavor][node]
                fitting = [d for d in domains.values() if len(d) >= count]
                if fitting:
                    return tuple(min(fitting, key=len)[:count])
                fallback = fallback or node
                if probe >= _DOMAIN_PROBES:
                    break
        if fallback is None:
            return None
        picked: list[str] = []
        for ids in sorted(self._free[flavor][fallback].values(), key=len, reverse=True):
            picked += ids[: count - len(picked)]
            if len(picked) == count:
                break
        return tuple(picked)

    def take(self, ids: tuple[str, ...]) -> None:
        """Mark units as used."""
        for uid in ids:
            u = self.unit[uid]
            self._free[u.flavor][u.node][u.domain].remove(uid)
            self._move(u, -1)

    def give(self, ids: tuple[str, ...]) -> None:
        """Mark units as free again."""
        for uid in ids:
            u = self.unit[uid]
            self._free[u.flavor][u.node][u.domain].append(uid)
            self._move(u, +1)

    def _move(self, u: Unit, delta: int) -> None:
        counts, buckets = self._count[u.flavor], self._buckets[u.flavor]
        buckets[counts[u.node]].discard(u.node)
        counts[u.node] += delta
        buckets[counts[u.node]].add(u.node)
        self.total[u.flavor] += delta
