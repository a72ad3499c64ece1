"""Error-budget policies: a reconcile loop from each SLO group's state to overrides in force.

``PolicyBook.step(now)`` reads every SLO group as the evaluator last judged
it (firing alerts, budget left) and says which policies to take and which to
undo -- a pure function of those figures and of when each action was taken,
so replaying the ledger through the evaluator and the book reproduces the
same actions (``governd slos backtest`` does). Hysteresis: an action is
undone only when its trigger has cleared, no page alert of its group fires,
the budget is back above its ``remaining_below`` (if it has one), and it has
held for ``hold``.

``SloPolicies`` runs the book in the server: every replica puts the same
overrides in force (each judges the same shared counts), and the one whose
compare-and-set in the store flips the policy's state records the action or
its undo as a ledger entry naming the SLO, the rule and the counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from governd.config.slo_policies import TARGET_LABEL, SloPolicy
from governd.governance.overrides import Override, Overrides
from governd.ledger.entries import LedgerEntry
from governd.ledger.slos.evaluator import Group, GroupStatus, SloEvaluator
from governd.ledger.slos.store import SloStore, encode
from governd.ledger.writer import control_entry

#: Appends an entry to the ledger.
Append = Callable[[LedgerEntry], Awaitable[None]]
OPERATIONS = {"taken": "slo_action", "undone": "slo_undone"}


@dataclass(frozen=True, slots=True)
class Step:
    """A policy taken or undone for one SLO group, with the figures that decided it."""

    slo: str
    group: Group
    index: int
    state: Literal["taken", "undone"]
    at: float
    override: Override
    firing: tuple[str, ...]
    remaining: float
    rule: str

    @property
    def key(self) -> str:
        """The override's key: one per SLO, group and policy."""
        return policy_key(self.slo, self.group, self.index)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for the entry's signals, ``--json`` and the admin API."""
        o = self.override
        return {
            "slo": self.slo,
            "group": dict(self.group),
            "policy": self.index,
            "rule": self.rule,
            "state": self.state,
            "at": self.at,
            "action": o.kind,
            "target": o.target,
            "value": o.value,
            "firing": list(self.firing),
            "remaining": round(self.remaining, 6),
        }

    def summary(self) -> str:
        """What was done and why, on one line."""
        group = " ".join(f"{k}={v}" for k, v in self.group)
        done = "took" if self.state == "taken" else "undid"
        return (
            f"{self.slo}{' ' + group if group else ''}: {done} {self.override.kind} "
            f"({self.override.describe()}) on {self.rule}; firing: "
            f"{', '.join(self.firing) or 'none'}, budget left {self.remaining:.1%}"
        )


def policy_key(slo: str, group: Group, index: int) -> str:
    """The store's and the overrides' name of one SLO group's policy."""
    return f"slo:{slo}:{encode(group)}:policy:{index}"


def state_name(index: int) -> str:
    """The policy's row name in the store (beside the alert severities)."""
    return f"policy:{index}"


def step_entry(step: Step) -> LedgerEntry:
    """The ledger entry of an action taken or undone."""
    return control_entry(OPERATIONS[step.state], step.summary(), ts=step.at, signals=step.as_dict())


class PolicyBook:
    """Every SLO's policies, and the actions in force, stepped on the evaluator's judgements."""

    def __init__(self, evaluator: SloEvaluator, org: str) -> None:
        self._evaluator = evaluator
        self._org = org
        #: Actions in force: key -> (when taken, the step that took it).
        self.taken: dict[str, Step] = {}

    def restore(self, steps: Iterable[Step]) -> None:
        """Take up actions already in force (a restarted replica)."""
        self.taken.update((s.key, s) for s in steps)

    def step(self, now: float) -> list[Step]:
        """The policies to take and undo now, in config order."""
        out: list[Step] = []
        for name in self._evaluator.names:
            cfg = self._evaluator.config(name)
            if not cfg.policies:
                continue
            silent = ("no_data",) if self._evaluator.silent(name) else ()
            for status in self._evaluator.status(name):
                firing = (*status.firing, *silent)
                for i, policy in enumerate(cfg.policies):
                    found = self._one(name, status, firing, i, policy, now)
                    if found is not None:
                        out.append(found)
        return out

    def _one(
        self,
        slo: str,
        status: GroupStatus,
        firing: tuple[str, ...],
        i: int,
        p: SloPolicy,
        now: float,
    ) -> Step | None:
        key = policy_key(slo, status.group, i)
        taken = self.taken.get(key)
        triggered = _triggered(p, firing, status.remaining)
        if taken is None and triggered:
            override = self._override(slo, status.group, p)
            step = Step(
                slo, status.group, i, "taken", now, override, firing, status.remaining, p.describe()
            )
            self.taken[key] = step
            return step
        if taken is not None and not triggered and _may_undo(p, firing, taken.at, now):
            del self.taken[key]
            return Step(
                slo,
                status.group,
                i,
                "undone",
                now,
                taken.override,
                firing,
                status.remaining,
                p.describe(),
            )
        return None

    def _override(self, slo: str, group: Group, p: SloPolicy) -> Override:
        source = f"slo:{slo}"
        label = TARGET_LABEL.get(p.do)
        target = p.target or (dict(group).get(label, "") if label else "")
        if p.do == "lower_priority":
            path = target if target.startswith(f"{self._org}/") else f"{self._org}/{target}"
            return Override(p.do, path, p.to or "", source)
        if p.do == "tighten_tools":
            return Override(p.do, p.tier or "", p.effect, source)
        if p.do == "freeze_releases":  # no model named, none grouped by: every release
            return Override(p.do, p.model or dict(group).get("model", ""), "", source)
        value = p.to if p.do == "degrade" else ",".join(p.priorities) if p.do == "shed" else ""
        return Override(p.do, target, value or "", source)


def _triggered(p: SloPolicy, firing: tuple[str, ...], remaining: float) -> bool:
    if p.when == "exhausted":
        return remaining <= 0
    if p.when is not None:
        return p.when in firing
    assert p.remaining_below is not None
    return remaining < p.remaining_below


def _may_undo(p: SloPolicy, firing: tuple[str, ...], taken_at: float, now: float) -> bool:
    """Hysteresis: every page pair cleared, and the action held long enough."""
    return "page" not in firing and now - taken_at >= p.hold


class SloPolicies:
    """The book in the server: overrides put in force and undone, each change recorded once."""

    def __init__(
        self, book: PolicyBook, overrides: Overrides, store: SloStore, append: Append
    ) -> None:
        self.book = book
        self._overrides = overrides
        self._store = store
        self._append = append

    def restore(self, states: Iterable[dict[str, Any]], history: Iterable[dict[str, Any]]) -> None:
        """Put back in force the actions the store says are taken (from their recorded steps)."""
        on = {(s["slo"], encode(s["group"]), s["severity"]) for s in states if s["firing"]}
        for done in history:
            group: Group = tuple(done["group"].items())
            key = (done["slo"], encode(group), state_name(done["policy"]))
            if key in on and done["state"] == "taken":
                on.discard(key)
                o = Override(done["action"], done["target"], done["value"], f"slo:{done['slo']}")
                step = Step(
                    done["slo"],
                    group,
                    done["policy"],
                    "taken",
                    done["at"],
                    o,
                    tuple(done["firing"]),
                    done["remaining"],
                    done["rule"],
                )
                self.book.restore([step])
                self._overrides.put(step.key, o)

    async def reconcile(self, now: float) -> list[Step]:
        """Step the book, put the overrides in force, record what this replica flipped."""
        recorded = []
        for step in self.book.step(now):
            if step.state == "taken":
                self._overrides.put(step.key, step.override)
            else:
                self._overrides.remove(step.key)
            on = step.state == "taken"
            name = state_name(step.index)
            if await asyncio.to_thread(self._store.claim, step.slo, step.group, name, on, now):
                await self._append(step_entry(step))
                recorded.append(step)
        return recorded
