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

_RESTRICTIVE = frozenset({"deny", "require_approval"})
#: Fields a policy may be indexed by: known for every action before its context is built.
INDEXED = (
    "request.model",
    "request.operation",
    "principal.org",
    "principal.team",
    "principal.project",
    "principal.path",
    "principal.key",
    "tool.name",
    "tool.server",
    "tool.tier",
)
_STRING = r'"[^"\\]*"|\'[^\'\\]*\''
_FIELD = "|".join(re.escape(f) for f in INDEXED)
_EQUALS = re.compile(rf"^(?:({_FIELD})\s*==\s*({_STRING})|({_STRING})\s*==\s*({_FIELD}))$")
_IN = re.compile(rf"^({_FIELD})\s+in\s+\[\s*((?:{_STRING})(?:\s*,\s*(?:{_STRING}))*)\s*,?\s*\]$")


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
    """The policies that can hold for one combination of indexed values, compiled together."""

    def __init__(self, policies: Sequence[PolicyConfig]) -> None:
        self.policies = list(policies)
        self._each = [compile_expr(p.when) for p in self.policies]
        # Built once: a request only picks the ones that hold.
        self._matches = [Match.of(p) for p in self.policies]
        joined = "[" + ", ".join(f"({p.when})" for p in self.policies) + "]"
        self._all = compile_expr(joined) if self.policies else None
        self.reads_budget = _reads(self.policies, r"\bbudget\b")
        self.reads_run = _reads(self.policies, r"\brun\.")
        self.reads_prompt = _reads(self.policies, r"\bprompt_tokens\b")

    def __bool__(self) -> bool:
        return self._all is not None

    def evaluate(self, context: dict[str, Any]) -> list[Match]:
        """The policies whose conditions hold for ``context``, in config order."""
        if self._all is None:
            return []
        result = self._all.eval(data=context)
        if not is_error(result):
            hits = result.plain_value()
            return [m for m, hit in zip(self._matches, hits, strict=True) if hit is True]
        out = []
        for policy, program in zip(self.policies, self._each, strict=True):
            one = program.eval(data=context)
            if is_error(one):
                if policy.effect in _RESTRICTIVE:
                    out.append(Match.of(policy, errored=True))
            elif one.value() is True:
                out.append(Match.of(policy))
        return out


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


def equalities(when: str) -> dict[str, frozenset[str]]:
    """The values each indexed field must have for ``when`` to hold (from its top-level ``&&``s).

    Conservative: a condition that is not a plain conjunction at the top (an
    ``||`` or ``?:`` outside parentheses) is indexed by nothing.
    """
    if '"""' in when or "'''" in when or "\\" in when:
        return {}  # triple quotes and escapes: not worth parsing, so index nothing
    parts = _top_level_conjuncts(when)
    if parts is None:
        return {}
    need: dict[str, frozenset[str]] = {}
    for part in parts:
        term = _unwrap(part.strip())
        found = _EQUALS.match(term)
        if found:
            field = found.group(1) or found.group(4)
            values = frozenset({_literal(found.group(2) or found.group(3))})
        else:
            inside = _IN.match(term)
            if not inside:
                continue
            field = inside.group(1)
            values = frozenset(_literal(v) for v in re.findall(_STRING, inside.group(2)))
        need[field] = need[field] & values if field in need else values
    return need


def _top_level_conjuncts(text: str) -> list[str] | None:
    """``text`` split at its top-level ``&&``; None if it has a top-level ``||`` or ``?``."""
    parts, depth, start, i, quote = [], 0, 0, 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith("&&", i):
            parts.append(text[start:i])
            start, i = i + 2, i + 1
        elif depth == 0 and (text.startswith("||", i) or ch == "?"):
            return None
        i += 1
    parts.append(text[start:])
    return parts


def _unwrap(term: str) -> str:
    """A term without the parentheses that enclose all of it."""
    while term.startswith("(") and term.endswith(")") and _top_level_conjuncts(term[1:-1]):
        inner = term[1:-1].strip()
        if _balanced(inner):
            term = inner
        else:
            break
    return term


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            return False
    return depth == 0


def _literal(quoted: str) -> str:
    return quoted[1:-1]
