"""CEL policies: compiled once, indexed by what they test, evaluated together per request.

A policy whose condition is a conjunction with a term like ``request.model ==
"o3"`` (or ``principal.team in ["a", "b"]``) cannot hold for a request whose
model is another: CEL's ``&&`` is false when any side is false, errors
included. So each policy is indexed by those equalities on a few fields that
are known before the context is built (``INDEXED``); a request evaluates only
the policies its values can match, and when none can, builds no context at
all. The policies a combination of values selects are compiled into one
list-valued program (one evaluation, not one per policy), kept per
combination. If that evaluation fails (a field missing at run time), each
policy is evaluated alone; a policy that errors counts as matched when its
effect restricts (``deny``, ``require_approval``) and as not matched
otherwise: it fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from governd.config import PolicyConfig
from governd.config.cel_env import compile_expr, is_error
from governd.config.conditions import INDEXED, Unsure, equalities, judge, plain

_RESTRICTIVE = frozenset({"deny", "require_approval"})


@dataclass(frozen=True, slots=True)
class Match:
    """A policy whose condition held (``errored``: it failed and counts by its effect)."""

    policy: PolicyConfig
    errored: bool = False
    reason: str = ""

    @classmethod
    def of(cls, policy: PolicyConfig, errored: bool = False) -> Match:
        """A match with the reason the decision will give for it."""
        note = " (errored: failing closed)" if errored else ""
        message = f": {policy.message}" if policy.message else ""
        return cls(policy, errored, f"policy:{policy.id}{message}{note}")


class Selection:
    """The policies that can hold for one combination of indexed values, compiled together.

    Policies with a ``plain`` form are evaluated in Python; the others in one
    CEL program. Should Python be unsure of a value, CEL decides for all.
    """

    def __init__(self, policies: Sequence[PolicyConfig]) -> None:
        self.policies = list(policies)
        self._each = [compile_expr(p.when) for p in self.policies]
        # Built once: a request only picks the ones that hold.
        self._matches = [Match.of(p) for p in self.policies]
        forms = [plain(p.when) for p in self.policies]
        self._plain = [m for m, f in zip(self._matches, forms, strict=True) if f is not None]
        self._judge = judge([f for f in forms if f is not None])
        self._cel = [m for m, f in zip(self._matches, forms, strict=True) if f is None]
        self._some = _joined([m.policy for m in self._cel])
        self._all = _joined(self.policies)
        self.reads_budget = _reads(self.policies, r"\bbudget\b")
        self.reads_run = _reads(self.policies, r"\brun\.")
        self.reads_prompt = _reads(self.policies, r"\bprompt_tokens\b")

    def __bool__(self) -> bool:
        return bool(self.policies)

    def evaluate(self, context: dict[str, Any]) -> list[Match]:
        """The policies whose conditions hold for ``context``, in config order."""
        if not self.policies:
            return []
        try:
            hits = self._judge(context)
        except (Unsure, LookupError):  # a field missing or odd: CEL decides all
            return self._by_cel(context)
        if self._some is None:  # every condition plain: these are the matches, in order
            return [m for m, hit in zip(self._plain, hits, strict=True) if hit]
        held = {id(m) for m, hit in zip(self._plain, hits, strict=True) if hit}
        result = self._some.eval(data=context)
        if is_error(result):
            return self._one_by_one(context)
        held.update(
            id(m) for m, hit in zip(self._cel, result.plain_value(), strict=True) if hit is True
        )
        return [m for m in self._matches if id(m) in held]

    def _by_cel(self, context: dict[str, Any]) -> list[Match]:
        assert self._all is not None
        result = self._all.eval(data=context)
        if is_error(result):
            return self._one_by_one(context)
        return [
            m for m, hit in zip(self._matches, result.plain_value(), strict=True) if hit is True
        ]

    def _one_by_one(self, context: dict[str, Any]) -> list[Match]:
        """Each policy alone: one that errors matches if it restricts (fails closed)."""
        out = []
        for policy, program in zip(self.policies, self._each, strict=True):
            one = program.eval(data=context)
            if is_error(one):
                if policy.effect in _RESTRICTIVE:
                    out.append(Match.of(policy, errored=True))
            elif one.value() is True:
                out.append(Match.of(policy))
        return out


def _joined(policies: Sequence[PolicyConfig]) -> Any:
    """One list-valued program over every condition, or None for none."""
    if not policies:
        return None
    return compile_expr("[" + ", ".join(f"({p.when})" for p in policies) + "]")


class PolicySet:
    """The configured policies, compiled and indexed."""

    def __init__(self, policies: Sequence[PolicyConfig]) -> None:
        self.policies = list(policies)
        self._needs = [equalities(p.when) for p in self.policies]
        used = {f for need in self._needs for f in need}
        #: The indexed fields some policy tests, in a fixed order: the key of a selection.
        self.fields = tuple(f for f in INDEXED if f in used)
        self._selections: dict[tuple[str, ...], Selection] = {}
        self.all = Selection(self.policies)

    def select(self, values: dict[str, str]) -> Selection:
        """The policies that can hold for an action with these indexed ``values``."""
        key = tuple(values.get(f, "") for f in self.fields)
        found = self._selections.get(key)
        if found is None:
            if len(self._selections) >= _MAX_SELECTIONS:
                self._selections.clear()
            chosen = [
                p
                for p, need in zip(self.policies, self._needs, strict=True)
                if all(values.get(f, "") in allowed for f, allowed in need.items())
            ]
            found = self._selections[key] = Selection(chosen)
        return found

    def evaluate(self, context: dict[str, Any]) -> list[Match]:
        """Every policy evaluated over ``context`` (``governd policy test``, no index)."""
        return self.all.evaluate(context)


_MAX_SELECTIONS = 10_000


def _reads(policies: Sequence[PolicyConfig], pattern: str) -> bool:
    return any(re.search(pattern, p.when) for p in policies)
