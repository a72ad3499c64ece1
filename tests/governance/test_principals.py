"""The principal tree: names resolve to nodes, allow-lists narrow down the tree."""

from __future__ import annotations

import pytest

from governd.config import parse_config
from governd.errors import InvalidRequest
from governd.governance import PrincipalTree

CFG = parse_config(
    """
upstreams: {s: {kind: sim}}
models:
  a: {deployments: [{upstream: s, model: m}]}
  b: {deployments: [{upstream: s, model: m}]}
  c: {deployments: [{upstream: s, model: m}]}
principals:
  org: acme
  models: [a, b]
  teams:
    t1:
      projects: {p1: {models: [a]}, p2: {}}
    t2: {models: [b, c]}
"""
)


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("t1", "acme/t1"),
        ("t1/p1", "acme/t1/p1"),
        ("/t1/p2/", "acme/t1/p2"),
        ("acme/t1", "acme/t1"),
        ("acme", "acme"),
    ],
)
def test_resolve(spec: str, path: str) -> None:
    assert PrincipalTree(CFG).resolve(spec).path == path


@pytest.mark.parametrize("spec", ["nope", "t1/nope", "t1/p1/extra"])
def test_resolve_rejects_unknown(spec: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        PrincipalTree(CFG).resolve(spec)
    assert info.value.param == "principal"


@pytest.mark.parametrize(
    ("spec", "models"),
    [
        ("acme", {"a", "b"}),
        ("t1", {"a", "b"}),
        ("t1/p1", {"a"}),
        ("t1/p2", {"a", "b"}),
        ("t2", {"b"}),
    ],
)
def test_every_allow_list_on_the_path_narrows(spec: str, models: set[str]) -> None:
    tree = PrincipalTree(CFG)
    assert tree.models_for(tree.resolve(spec)) == models
