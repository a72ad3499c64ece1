"""Live changes controllers make to what governance decides: drained deployments, degraded models,
lowered priorities, shed priorities, tightened tool tiers and frozen releases.

A controller puts an ``Override`` under a key of its own and removes it when
it undoes the action; admission and the router read the indexes built from
every override in force. With none in force (the usual case) each read is one
attribute check.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from governd.actions import Decision, Priority, within
from governd.errors import Overloaded
from governd.governance.ladder import RANK

#: Seconds a shed call is told to wait before trying again.
SHED_RETRY_S = 30.0

Kind = Literal[
    "freeze_releases",
    "shift_route",
    "degrade",
    "degrade_node",
    "lower_priority",
    "shed",
    "tighten_tools",
]


@dataclass(frozen=True, slots=True)
class Override:
    """One change in force, and the rule that made it (``slo:NAME``)."""

    kind: Kind
    #: What it acts on: a deployment, model, principal path or tool tier ('' for every release).
    target: str
    #: degrade: the alias; lower_priority: the priority; shed: priorities (comma-separated);
    #: tighten_tools: the effect.
    value: str
    source: str

    def describe(self) -> str:
        """The change in words."""
        return {
            "freeze_releases": f"releases of {self.target} frozen"
            if self.target
            else "releases frozen",
            "shift_route": f"no new calls to deployment {self.target}",
            "degrade": f"{self.target} served by {self.value}",
            "degrade_node": f"{self.target}'s calls served by their models' degrade_to",
            "lower_priority": f"{self.target} at priority {self.value} at most",
            "shed": f"{self.target} refuses {self.value.replace(',', ', ')} calls",
            "tighten_tools": f"{self.target} tools: {self.value.replace('_', ' ')}",
        }[self.kind]


class Overrides:
    """Every override in force, by key, and the indexes admission and the router read."""

    def __init__(self) -> None:
        self._by_key: dict[str, Override] = {}
        self.active = False
        #: Deployments that take no new calls (the router reads this set in place).
        self.drained: set[str] = set()
        self.degraded: dict[str, tuple[str, str]] = {}
        self.degraded_nodes: list[tuple[str, str]] = []
        self.priorities: list[tuple[str, Priority, str]] = []
        self.shed: dict[str, tuple[frozenset[str], str]] = {}
        #: Tool tier -> (effect, source) of ``tighten_tools`` overrides.
        self.tiers: dict[str, tuple[str, str]] = {}

    def put(self, key: str, override: Override) -> None:
        """Put ``override`` in force under ``key`` (replacing what was there)."""
        self._by_key[key] = override
        self._index()

    def remove(self, key: str) -> Override | None:
        """Take the override under ``key`` out of force; returns it."""
        gone = self._by_key.pop(key, None)
        self._index()
        return gone

    def all(self) -> dict[str, Override]:
        """Every override in force, by key."""
        return dict(self._by_key)

    def admit(
        self,
        path: str,
        served: str,
        decision: Decision,
        priority: Priority,
        degrade_to: str | None = None,
    ) -> tuple[Decision, Priority]:
        """A model call's verdict and priority once the overrides in force had their say.

        Raises ``Overloaded`` for a call a ``shed`` override refuses.
        """
        reasons = list(decision.reasons)
        priority, lowered_by = self.lowered(path, priority)
        if lowered_by is not None:
            reasons.append(f"{lowered_by}: priority lowered to {priority}")
        degraded = self.degraded.get(served)
        if degraded is None and degrade_to and decision.effect == "allow":
            pressed = next((n for n in self.degraded_nodes if within(path, n[0])), None)
            degraded = (degrade_to, pressed[1]) if pressed else None
        if degraded is not None and decision.effect in ("allow", "degrade"):
            to, source = degraded
            reasons.append(f"{source}: {served} degraded to {to}")
            decision = dataclasses.replace(
                decision, effect="degrade", reasons=tuple(reasons), model=to
            )
            served = to
        elif len(reasons) > len(decision.reasons):
            decision = dataclasses.replace(decision, reasons=tuple(reasons))
        shed = self.shed.get(served)
        if shed is not None and priority in shed[0]:
            why = f"{shed[1]}: {priority} calls to {served} are shed"
            raise Overloaded(
                f"{why}; try again later",
                retry_after=SHED_RETRY_S,
                decision=Decision("deny", (*reasons, why), served, policy=shed[1]),
            )
        return decision, priority

    def lowered(self, path: str, priority: Priority) -> tuple[Priority, str | None]:
        """``priority`` as the overrides on ``path``'s subtree lower it, and what lowered it."""
        source = None
        for node, low, by in self.priorities:
            if within(path, node) and RANK[low] > RANK[priority]:
                priority, source = low, by
        return priority, source

    def _index(self) -> None:
        found = list(self._by_key.values())
        self.active = bool(found)
        self.drained.clear()
        self.drained.update(o.target for o in found if o.kind == "shift_route")
        self.degraded = {o.target: (o.value, o.source) for o in found if o.kind == "degrade"}
        self.degraded_nodes = [(o.target, o.source) for o in found if o.kind == "degrade_node"]
        self.priorities = [
            (o.target, o.value, o.source)  # type: ignore[misc]
            for o in found
            if o.kind == "lower_priority"
        ]
        self.shed = {
            o.target: (frozenset(o.value.split(",")), o.source) for o in found if o.kind == "shed"
        }
        self.tiers = {o.target: (o.value, o.source) for o in found if o.kind == "tighten_tools"}
