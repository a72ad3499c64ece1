"""The config loader, fuzzed: whatever the file says, a ConfigError naming where, never a crash.

Hypothesis mutates the embedded defaults (a value replaced by another of any
type, a key dropped, an unknown key added) and also feeds arbitrary text.
Every outcome is a config or a ``ConfigError`` whose problems each say what
and where; any other exception is a bug a user would have met as a traceback.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from governd.config import ConfigError
from governd.config.loader import parse_config

DEFAULTS: Any = yaml.safe_load(
    resources.files("governd.config").joinpath("defaults.yaml").read_text()
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "0", "-1", "1e309", "30d", "${NOPE}", "sim", "acme", "usd", "day"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in ``node``."""
    out = [at] if at else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*at, i))
    return out


ALL_PATHS = paths(DEFAULTS)


def mutated(path: tuple[Any, ...], how: str, value: Any) -> Any:
    """The defaults with one change at ``path``."""
    doc = yaml.safe_load(yaml.safe_dump(DEFAULTS))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "drop" and isinstance(parent, dict):
        del parent[last]
    elif how == "add" and isinstance(parent[last], dict):
        parent[last]["surprise_key"] = value
    else:
        parent[last] = value
    return doc


def judged(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as exc:
        assert exc.problems, "an error with no problem in it"
        for problem in exc.problems:
            assert problem.message.strip(), problem
            assert problem.path or problem.line is not None, f"nowhere: {problem}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), st.sampled_from(["replace", "drop", "add"]), values)
def test_a_changed_value_is_a_config_or_a_located_problem(
    path: tuple[Any, ...], how: str, value: Any
) -> None:
    judged(yaml.safe_dump(mutated(path, how, value), allow_unicode=True))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
@example("=")  # a tag YAML cannot build: was a traceback
@example("\x1f")  # a character YAML refuses: was a problem with no line
def test_any_text_is_a_config_or_a_located_problem(text: str) -> None:
    judged(text)
