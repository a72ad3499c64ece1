"""A principal's effective terms: what admission reads of the tree, resolved once per key.

The config is frozen for the life of a process, so what the tree says of a
principal (the models it may call, its output cap, its priority class, its
tool allow-lists, each node's ladder, whether rate limits apply, what
policies see of it) is computed on its first call and reused. Budgets are not
part of it: operators change them at runtime (``Budgets`` caches their paths
by generation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from governd.actions import Principal, Priority
from governd.config import LadderConfig
from governd.governance.policies import Selection
from governd.governance.principals import PrincipalTree
from governd.governance.ratelimits import LimitPath, RateLimits

_MAX_PRINCIPALS = 100_000


@dataclass(frozen=True, slots=True)
class Terms:
    """What one principal may do, and what its nodes say, as config declares it."""

    principal: Principal
    models: frozenset[str]
    max_tokens: int | None
    priority: Priority
    tool_lists: tuple[list[str], ...]
    #: Node path -> its ladder (a key's node: its owner's), for every node on the path.
    ladders: Mapping[str, LadderConfig]
    #: The limited nodes on the path, with their counters.
    limits: LimitPath
    rate_limited: bool
    #: What policies see as ``principal``.
    view: Mapping[str, str]
    #: The policies a model call may match, by (model, operation): filled as calls come.
    selections: dict[tuple[str, str], Selection] = field(default_factory=dict)


class TermsBook:
    """Terms per principal, resolved on first use."""

    def __init__(self, tree: PrincipalTree, limits: RateLimits) -> None:
        self._tree = tree
        self._limits = limits
        self._known: dict[Principal, Terms] = {}

    def of(self, principal: Principal) -> Terms:
        """The principal's terms."""
        found = self._known.get(principal)
        if found is None:
            if len(self._known) >= _MAX_PRINCIPALS:
                self._known.clear()
            found = self._known[principal] = self._resolve(principal)
        return found

    def _resolve(self, who: Principal) -> Terms:
        tree = self._tree
        nodes = tree.nodes_on_path(who)
        paths = [
            who.org,
            *("/".join((who.org, *who.scope[: i + 1])) for i in range(len(who.scope))),
        ]
        ladders = {path: node.ladder for path, node in zip(paths, nodes, strict=False)}
        if who.key_id:
            ladders[f"{who.path}/{who.key_id}"] = nodes[-1].ladder
        limits = self._limits.path(who)
        return Terms(
            principal=who,
            models=tree.models_for(who),
            max_tokens=tree.max_tokens_for(who),
            priority=tree.priority_for(who),
            tool_lists=tuple(tree.tool_lists(who)),
            ladders=ladders,
            limits=limits,
            rate_limited=bool(limits.limits),
            view={
                "org": who.org,
                "team": who.team or "",
                "project": who.project or "",
                "path": who.path,
                "key": who.key_id or "",
            },
        )
