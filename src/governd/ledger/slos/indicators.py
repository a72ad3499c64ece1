"""An SLO's indicator, compiled: which entries it counts, and whether each is good or bad.

Expressions are CEL over ``entry`` (the fields of ``cel_env.sample_entry``).
One that is a conjunction of comparisons with literals (the ready-made SLIs,
and most filters) is compiled to a Python function over the ``LedgerEntry``
itself: the evaluator sees every entry, and CEL costs microseconds a call.
Field types are known, so a comparison CEL would refuse (a string ordered
against a number) is decided when compiling, as CEL decides it: never true.
Anything else is evaluated by CEL; an evaluation error counts the entry as
neither good nor bad.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import orjson

from governd.config import cel_env
from governd.config.conditions import KIND, SYMBOLS, TRUTH, Plain, Term, plain
from governd.config.slos import Sli, SloConfig
from governd.ledger.entries import LedgerEntry

Predicate = Callable[[LedgerEntry], bool]

#: The ready-made SLIs as (filter, bad): what each counts and what is bad among them.
READY: dict[Sli, tuple[str | None, str]] = {
    "availability": (None, "entry.status >= 500"),
    "latency": ("entry.status < 400", "entry.latency_ms > {threshold}"),
    "ttft": ("entry.status < 400 && entry.ttft_ms > 0", "entry.ttft_ms > {threshold}"),
    "cost": ("entry.status < 400", "entry.cost_usd > {threshold}"),
    "refusals": (None, 'entry.decision == "deny"'),
}

#: How each field of ``entry`` is read from a ``LedgerEntry`` (absent: zero or empty).
_READ: dict[str, str] = {
    "kind": "e.kind",
    "operation": "e.operation",
    "principal": "e.principal",
    "key": '(e.key_id or "")',
    "run": '(e.run_id or "")',
    "model": '(e.model or "")',
    "served_model": '(e.served_model or "")',
    "deployment": '(e.deployment or "")',
    "decision": "e.decision",
    "status": "e.status",
    "error_code": '(e.error_code or "")',
    "stream": "e.stream",
    "attempts": "e.attempts",
    "latency_ms": "e.latency_ms",
    "ttft_ms": "(e.ttft_ms or 0.0)",
    "input_tokens": "e.input_tokens",
    "cached_tokens": "e.cached_tokens",
    "output_tokens": "e.output_tokens",
    "cost_usd": "e.cost_usd",
    "tier": "tier(e)",
}
_KIND_OF = {name: KIND[type(value)] for name, value in cel_env.sample_entry().items()}


def tier(entry: LedgerEntry) -> str:
    """A tool call's risk tier, from its signals ("" for other actions)."""
    if entry.kind != "tool_call" or not entry.signals:
        return ""
    found = orjson.loads(entry.signals).get("tier")
    return found if isinstance(found, str) else ""


def reader(field: str) -> Callable[[LedgerEntry], Any]:
    """How to read one field of ``entry`` (``group_by`` uses it)."""
    return _READERS[field]


def view(entry: LedgerEntry) -> dict[str, Any]:
    """What CEL sees as ``entry``."""
    return {name: _READERS[name](entry) for name in _READ}


#: An SLO's indicator: -1 (the entry is not counted), 0 (good) or 1 (bad).
Classify = Callable[[LedgerEntry], int]


def indicator(slo: SloConfig) -> Classify:
    """Compile an SLO's indicator (its kind is the evaluator's index, not checked here).

    An expression that fails to evaluate is false: the entry is not counted
    (``filter``), is good (``bad``), or is bad (``good``).
    """
    ready_filter, judge = READY[slo.sli] if slo.sli else (None, slo.bad or slo.good or "")
    judge = judge.format(threshold=slo.threshold)
    filters = [f for f in (ready_filter, slo.filter) if f]
    bad_when = slo.good is None
    counts, judged = _plain(filters), _plain([judge])
    if counts is not None and judged is not None:  # one Python expression: the hot path
        verdict = "(1 if {0} else 0)" if bad_when else "(0 if {0} else 1)"
        body = verdict.format(_source(judged))
        function: Classify = _function(
            f"({body} if {_source(counts)} else -1)" if counts.terms else body
        )
        return function
    selects, holds = _conjunction(filters), _conjunction([judge])
    return lambda e: -1 if not selects(e) else int(holds(e) == bad_when)


def _plain(exprs: list[str]) -> Plain | None:
    """The conjunction of ``exprs`` as one plain form, if each has one over known fields."""
    terms: list[Term] = []
    for expr in exprs:
        form = plain(expr, ("entry",))
        if form is None or any(term[1] not in _READ for term in form.terms):
            return None
        terms.extend(form.terms)
    return Plain(tuple(terms))


def _conjunction(exprs: list[str]) -> Predicate:
    """All of ``exprs`` hold: Python where every one is plain, else CEL."""
    form = _plain(exprs)
    if form is not None:
        return _function(_source(form))
    programs = [cel_env.compile_expr(expr, cel_env.entry_env()) for expr in exprs]
    return lambda e: _cel_holds(programs, e)


def _source(form: Plain) -> str:
    """A plain conjunction as a Python expression over ``e`` (fields and literals are checked)."""
    return "(" + (" and ".join(_python(term) for term in form.terms) or "True") + ")"


def _function(expression: str) -> Callable[[LedgerEntry], Any]:
    function: Callable[[LedgerEntry], Any] = eval(
        f"lambda e: {expression}", {"tier": tier, "__builtins__": {}}
    )
    return function


def _python(term: Term) -> str:
    _, field, op, literal, kind = term
    read = _READ[field]
    if op is TRUTH:
        return read if literal else f"not {read}"
    if _KIND_OF[field] != kind:  # CEL: never equal, unequal, and an error when ordered
        return "True" if op is operator.ne else "False"
    return f"({read} {SYMBOLS[op]} {literal!r})"


def _cel_holds(programs: list[Any], entry: LedgerEntry) -> bool:
    data = {"entry": view(entry)}
    for program in programs:
        result = program.eval(data=data)
        if cel_env.is_error(result) or result.value() is not True:
            return False
    return True


_READERS = {name: _function(source) for name, source in _READ.items()}
