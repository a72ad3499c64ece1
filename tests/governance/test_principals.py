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


SAME_NAMES = parse_config(
    "principals: {org: bench, teams: {bench: {projects: {p1: {}}}, p1: {}, solo: {}}}"
)


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("bench", "bench"),  # a full path: the org
        ("/", "bench"),
        ("bench/bench", "bench/bench"),  # the team, by its full path
        ("bench/bench/p1", "bench/bench/p1"),  # the project, by its full path
        ("bench/p1", "bench/p1"),  # the full path of team p1 wins over team bench's project
        ("solo", "bench/solo"),  # TEAM
        ("bench/solo", "bench/solo"),  # ORG/TEAM
    ],
)
def test_an_org_and_a_team_of_one_name_resolve_by_full_path_first(spec: str, path: str) -> None:
    """Every node's full path names it, whatever the names; ``TEAM[/PROJECT]`` where unambiguous."""
    assert PrincipalTree(SAME_NAMES).resolve(spec).path == path


def test_team_and_project_of_a_team_named_as_the_org() -> None:
    """Without a team ``p1``, ``bench/p1`` can only mean team bench's project p1."""
    tree = PrincipalTree(
        parse_config("principals: {org: bench, teams: {bench: {projects: {p1: {}}}}}")
    )
    assert tree.resolve("bench/p1").path == "bench/bench/p1"
    assert tree.resolve("bench/bench/p1").path == "bench/bench/p1"


def test_every_node_resolves_from_its_own_full_path() -> None:
    tree = PrincipalTree(SAME_NAMES)
    for node in SAME_NAMES.principals.walk():
        assert tree.resolve(node.path).path == node.path


@pytest.mark.parametrize("spec", ["nope", "t1/nope", "t1/p1/extra", "acme/t1/nope", "acme/nope"])
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
