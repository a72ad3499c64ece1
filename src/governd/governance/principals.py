"""The org > team > project tree from config; every limit and budget hangs on a node of it."""

from __future__ import annotations

from governd.actions import Principal, Priority
from governd.config import GovernConfig, NodeConfig
from governd.errors import InvalidRequest


class PrincipalTree:
    """Resolves ``TEAM[/PROJECT]`` names and answers which models a node may call."""

    def __init__(self, cfg: GovernConfig) -> None:
        self.org = cfg.principals.org
        self._cfg = cfg
        self._access: dict[tuple[str, ...], frozenset[str]] = {}
        self._caps: dict[tuple[str, ...], int | None] = {}
        self._priorities: dict[tuple[str, ...], Priority] = {}

    def resolve(self, spec: str) -> Principal:
        """The node ``spec`` names: a full path ``ORG[/TEAM[/PROJECT]]`` or ``TEAM[/PROJECT]``.

        ``/`` (or nothing) is the org. A spec that starts with the org's name is
        read as a full path first, as ledger entries, keys and budgets print
        nodes; if no such node exists it is read as ``TEAM[/PROJECT]``. So a
        full path always means what it says, whatever the names (an org and a
        team both called ``bench``: ``bench`` is the org, ``bench/bench`` the
        team, ``bench/bench/p1`` its project, and ``bench/p1`` that project too
        unless a team ``p1`` exists).
        """
        parts = [p for p in spec.strip().strip("/").split("/") if p]
        if not parts:
            return Principal(self.org)
        if parts[0] == self.org:
            found = self._node(parts[1:])
            if found is not None:
                return found
        found = self._node(parts)
        if found is not None:
            return found
        relative = parts[1:] if parts[0] == self.org and len(parts) > 2 else parts
        teams = self._cfg.principals.teams
        if len(relative) == 2 and relative[0] in teams:
            raise InvalidRequest(
                f"unknown project {relative[1]!r} in team {relative[0]!r}", param="principal"
            )
        raise InvalidRequest(
            f"unknown principal {spec!r}: expected TEAM[/PROJECT] or {self.org}/TEAM[/PROJECT]",
            param="principal",
        )

    def _node(self, parts: list[str]) -> Principal | None:
        """The node ``TEAM[/PROJECT]`` under the org, if it exists (the org for no parts)."""
        teams = self._cfg.principals.teams
        if len(parts) > 2 or (parts and parts[0] not in teams):
            return None
        if len(parts) == 2 and parts[1] not in teams[parts[0]].projects:
            return None
        return Principal(self.org, *parts)

    def models_for(self, principal: Principal) -> frozenset[str]:
        """Model aliases the principal may call: every allow-list on its path narrows the set."""
        scope = principal.scope
        found = self._access.get(scope)
        if found is None:
            found = self._access[scope] = self._compute_access(scope)
        return found

    def max_tokens_for(self, principal: Principal) -> int | None:
        """The tightest ``max_tokens`` cap on the principal's path, if any."""
        scope = principal.scope
        if scope not in self._caps:
            caps = [n.max_tokens for n in self._path(scope) if n.max_tokens is not None]
            self._caps[scope] = min(caps) if caps else None
        return self._caps[scope]

    def priority_for(self, principal: Principal) -> Priority:
        """The principal's priority class: the nearest one set on its path, else ``standard``."""
        scope = principal.scope
        found = self._priorities.get(scope)
        if found is None:
            found = "standard"
            for node in self._path(scope):
                if node.priority is not None:
                    found = node.priority
            self._priorities[scope] = found
        return found

    def tool_lists(self, principal: Principal) -> list[list[str]]:
        """The tool allow-lists on the principal's path (each one narrows what passes)."""
        return [n.tools for n in self._path(principal.scope) if n.tools is not None]

    def nodes_on_path(self, principal: Principal) -> list[NodeConfig]:
        """The config of every node from the org down to the principal's."""
        return self._path(principal.scope)

    def node_config(self, path: str) -> NodeConfig:
        """The config of the node at ``org/team[/project]`` (a key's node: its owner's)."""
        parts = path.split("/")[1:]
        nodes = self._path(tuple(p for p in parts if not p.startswith("key_")))
        return nodes[-1]

    def _path(self, scope: tuple[str, ...]) -> list[NodeConfig]:
        nodes: list[NodeConfig] = [self._cfg.principals]
        team = self._cfg.principals.teams.get(scope[0]) if scope else None
        if team is not None:
            nodes.append(team)
            project = team.projects.get(scope[1]) if len(scope) > 1 else None
            if project is not None:
                nodes.append(project)
        return nodes

    def _compute_access(self, scope: tuple[str, ...]) -> frozenset[str]:
        allowed = set(self._cfg.models)
        for node in self._path(scope):
            if node.models is not None:
                allowed &= set(node.models)
        return frozenset(allowed)
