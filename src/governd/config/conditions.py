"""What a policy's condition says before it is evaluated: the values it requires, or its plain form.

CEL's ``&&`` is false when any side is false (errors included), so a term
``FIELD == "v"`` at the top of a conjunction is a value the whole condition
requires: ``equalities`` finds them, for the index. A condition made only of
comparisons of context fields with literals (``request.n > 8 &&
!request.stream``) has a ``plain`` form that Python evaluates exactly as CEL
would for well-typed values; anything it is unsure of (a value of another
type) it hands back to CEL.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


@functools.cache
def _membership(fields: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The patterns of ``FIELD == "v"`` (either way round) and ``FIELD in ["v", ...]``."""
    field = "|".join(re.escape(f) for f in fields)
    return (
        re.compile(rf"^(?:({field})\s*==\s*({_STRING})|({_STRING})\s*==\s*({field}))$"),
        re.compile(rf"^({field})\s+in\s+\[\s*((?:{_STRING})(?:\s*,\s*(?:{_STRING}))*)\s*,?\s*\]$"),
    )


#: The sections of a policy's context a plain term may read.
POLICY_SECTIONS = ("request", "budget", "time", "principal", "run", "tool")
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_LITERAL = rf"{_STRING}|{_NUMBER}|true|false"
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@functools.cache
def _forms(sections: tuple[str, ...]) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """The patterns of a comparison, a reversed one and a truth test over ``sections``."""
    path = rf"({'|'.join(sections)})\.([a-z_]+)"
    return (
        re.compile(rf"^{path}\s*(==|!=|<=|>=|<|>)\s*({_LITERAL})$"),
        re.compile(rf"^({_LITERAL})\s*(==|!=|<=|>=|<|>)\s*{path}$"),
        re.compile(rf"^(!?)\s*{path}$"),
    )


class Unsure(Exception):
    """A value whose comparison CEL might judge otherwise than Python: ask CEL."""


#: The kind of a value as CEL compares it: bools, numbers, strings (others: no plain compare).
KIND: dict[type, str] = {bool: "bool", int: "number", float: "number", str: "string"}
TRUTH = "truth"
#: (section, field, operator or ``TRUTH``, literal, literal's kind)
Term = tuple[str, str, Any, Any, str]


@dataclass(frozen=True, slots=True)
class Plain:
    """A condition as a conjunction of comparisons Python can evaluate (``judge`` compiles them)."""

    terms: tuple[Term, ...]


#: Judges plain forms over a context: whether each holds, in order.
Judge = Callable[[Mapping[str, Mapping[str, Any]]], tuple[bool, ...]]


def judge(forms: Sequence[Plain]) -> Judge:
    """One Python function that says, for a context, whether each of ``forms`` holds.

    Each term compares a value of the context as CEL would for the value it
    finds: values of different kinds are never equal and unequal, a truth test
    of a value that is not a bool and an ordering across kinds raise
    ``Unsure`` (CEL would error: let it decide); a missing field raises
    ``KeyError``. Terms are judged left to right, the first false one ends
    its form, as ``&&`` does.
    """
    source = "lambda c: (" + "".join(_form_source(form) + ", " for form in forms) + ")"
    names = {"type": type, "int": int, "float": float, "str": str, "bool": bool, "_unsure": _unsure}
    function: Judge = eval(source, {"__builtins__": {}, **names})
    return function


def _form_source(form: Plain) -> str:
    return "(" + (" and ".join(map(_term_source, form.terms)) or "True") + ")"


_IS_KIND = {
    "number": "((t := type(v := {read})) is int or t is float)",
    "string": "(type(v := {read}) is str)",
    "bool": "(type(v := {read}) is bool)",
}
#: How Python writes each operator of a term.
SYMBOLS = {
    operator.eq: "==",
    operator.ne: "!=",
    operator.lt: "<",
    operator.le: "<=",
    operator.gt: ">",
    operator.ge: ">=",
}


def _term_source(term: Term) -> str:
    section, field, op, literal, kind = term
    is_kind = _IS_KIND[kind].format(read=f"c[{section!r}][{field!r}]")
    if op is TRUTH:
        return f"(({is_kind} or _unsure()) and v is {literal!r})"
    compare = f"v {SYMBOLS[op]} {literal!r}"
    if op is operator.eq:
        return f"({is_kind} and {compare})"
    if op is operator.ne:
        return f"(not {is_kind} or {compare})"
    return f"(({is_kind} or _unsure()) and {compare})"


def _unsure() -> bool:
    raise Unsure


def plain(when: str, sections: tuple[str, ...] = POLICY_SECTIONS) -> Plain | None:
    """The plain form of ``when`` (reading only ``sections``), if it has one."""
    if '"""' in when or "'''" in when or "\\" in when:
        return None
    parts = _top_level_conjuncts(when)
    if parts is None:
        return None
    terms = []
    for part in parts:
        term = _term(_unwrap(part.strip()), sections)
        if term is None:
            return None
        terms.append(term)
    return Plain(tuple(terms))


def _term(text: str, sections: tuple[str, ...]) -> Term | None:
    compare, compare_back, truth = _forms(sections)
    found = compare.match(text)
    if found:
        section, field, op, literal = found.group(1, 2, 3, 4)
    elif found := compare_back.match(text):
        literal, op, section, field = found.group(1), _FLIP[found.group(2)], *found.group(3, 4)
    elif found := truth.match(text):
        return found.group(2), found.group(3), TRUTH, not found.group(1), "bool"
    else:
        return None
    value = _value(literal)
    return section, field, _OPS[op], value, KIND[type(value)]


def _value(literal: str) -> Any:
    if literal in ("true", "false"):
        return literal == "true"
    if literal[0] in "\"'":
        return literal[1:-1]
    return float(literal) if any(c in literal for c in ".eE") else int(literal)


def equalities(when: str, fields: tuple[str, ...] = INDEXED) -> dict[str, frozenset[str]]:
    """The values each of ``fields`` must have for ``when`` to hold (from its top-level ``&&``s).

    Conservative: a condition that is not a plain conjunction at the top (an
    ``||`` or ``?:`` outside parentheses) is indexed by nothing.
    """
    if '"""' in when or "'''" in when or "\\" in when:
        return {}  # triple quotes and escapes: not worth parsing, so index nothing
    parts = _top_level_conjuncts(when)
    if parts is None:
        return {}
    equals, among = _membership(fields)
    need: dict[str, frozenset[str]] = {}
    for part in parts:
        term = _unwrap(part.strip())
        found = equals.match(term)
        if found:
            field = found.group(1) or found.group(4)
            values = frozenset({_literal(found.group(2) or found.group(3))})
        else:
            inside = among.match(term)
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
