"""The CEL environment policies are written in: its variables and how expressions are checked.

Shared by the config loader (to reject a bad policy with its line) and the
policy engine (to evaluate). Every policy reads these variables; the fields of
each are those of ``sample_context`` (documented in docs/policies.md).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from cel_expr_python import cel

VARIABLES = ("principal", "request", "budget", "run", "time", "tool", "args", "job")
#: What policies see of ``run`` outside a run.
NO_RUN: dict[str, Any] = {
    "id": "",
    "steps": 0,
    "tool_calls": 0,
    "usd": 0.0,
    "risk": 0.0,
    "level": "",
}


#: What policies see of ``job`` for actions that are not job submissions.
NO_JOB: dict[str, Any] = {
    "queue": "",
    "gpus": 0,
    "flavor": "",
    "priority": "",
    "max_runtime_s": 0.0,
}


def sample_context() -> dict[str, Any]:
    """A context with every field policies may read, as requests fill it in."""
    return {
        "principal": {"org": "acme", "team": "", "project": "", "path": "acme", "key": ""},
        "request": {
            "model": "m",
            "operation": "chat",
            "stream": False,
            "max_tokens": 0,
            "n": 1,
            "prompt_tokens": 0,
            "messages": 0,
            "tools": 0,
            "user": "",
        },
        "budget": {"used": 0.0, "over_soft": False},
        "run": dict(NO_RUN),
        "time": {"hour": 0, "minute": 0, "weekday": 0, "unix": 0},
        "tool": {"name": "", "server": "", "tier": ""},
        "args": {},
        "job": dict(NO_JOB),
    }


@functools.cache
def env() -> Any:
    """The shared CEL environment: every variable a map from field names to values.

    Declared as ``map<string, dyn>`` rather than ``dyn``: evaluation was ~15%
    faster with the same policies (bench/decision.py).
    """
    return cel.NewEnv(variables={v: cel.Type.Map(cel.Type.STRING, cel.Type.DYN) for v in VARIABLES})


def sample_entry() -> dict[str, Any]:
    """What SLO expressions see of a ledger entry as ``entry`` (docs/slos.md lists the fields).

    Absent values are zero or empty, never null: ``entry.ttft_ms > 500`` is
    false for a call that never started, not an error.
    """
    return {
        "kind": "model_call",
        "operation": "chat",
        "principal": "acme",
        "key": "",
        "run": "",
        "model": "",
        "served_model": "",
        "deployment": "",
        "decision": "allow",
        "status": 200,
        "error_code": "",
        "stream": False,
        "attempts": 0,
        "latency_ms": 0.0,
        "ttft_ms": 0.0,
        "input_tokens": 0,
        "cached_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "tier": "",
    }


@functools.cache
def entry_env() -> Any:
    """The CEL environment of SLO indicators: one variable, ``entry``."""
    return cel.NewEnv(variables={"entry": cel.Type.Map(cel.Type.STRING, cel.Type.DYN)})


def compile_expr(expr: str, over: Any = None) -> Any:
    """A compiled program (in ``over``, default the policies' environment).

    ``ValueError`` with the position when it does not parse or check.
    """
    try:
        return (over or env()).compile(expr)
    except RuntimeError as exc:
        raise ValueError(_cel_error(exc)) from None


def is_error(value: Any) -> bool:
    """Whether an evaluation result is a CEL error value."""
    return bool(value.type() == cel.Type.ERROR)


def problem(expr: str) -> str | None:
    """Why ``expr`` cannot be a policy condition, or None when it can."""
    return _problem(expr, env(), sample_context(), "policies", "docs/policies.md")


def entry_problem(expr: str) -> str | None:
    """Why ``expr`` cannot be an SLO indicator over ``entry``, or None when it can."""
    return _problem(expr, entry_env(), {"entry": sample_entry()}, "SLOs", "docs/slos.md")


def _problem(expr: str, over: Any, sample: dict[str, Any], who: str, doc: str) -> str | None:
    try:
        program = compile_expr(expr, over)
    except ValueError as exc:
        return str(exc)
    result = program.eval(data=sample)
    if is_error(result):
        message = str(result.value())
        if "Key not found" in message and re.search(r"\bargs\b", expr):
            return None  # tool arguments vary per tool: a missing one fails closed at run time
        return f"{message} (the fields {who} can read are listed in {doc})"
    if result.type() != cel.Type.BOOL:
        return f"must be a boolean, not {result.type().name().lower()}"
    return None


def _cel_error(exc: RuntimeError) -> str:
    text = str(exc).replace("INVALID_ARGUMENT: ", "").replace("ERROR: <input>:", "at ")
    return " ".join(line.strip() for line in text.splitlines() if line.strip() and "^" not in line)
