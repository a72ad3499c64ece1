"""Rate limits per node of the principal tree: requests/min, tokens/min, requests in flight.

Requests and tokens per minute use GCRA (the generic cell rate algorithm): a
node keeps one "theoretical arrival time"; each request pushes it forward by
its cost divided by the rate, and is refused when that would put it more than
a minute ahead of now. That allows a full minute's worth in a burst, then the
steady rate, and says exactly when a refused request would fit
(``Retry-After``). Tokens are charged at their bound before the call and the
unused part is given back after. Everything reads time from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governd.actions import Principal
from governd.clock import Clock
from governd.config import GovernConfig, NodeConfig
from governd.errors import RateLimited

WINDOW_S = 60.0


@dataclass(slots=True)
class _Node:
    path: str
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    request_tat: float = 0.0
    token_tat: float = 0.0
    in_flight: int = 0


@dataclass(slots=True)
class Permit:
    """What a call took from its path's limits, to be given back once."""

    nodes: list[_Node] = field(default_factory=list)
    tokens: int = 0
    released: bool = False


class RateLimits:
    """The limits of every node that has any, checked along a principal's path."""

    def __init__(self, cfg: GovernConfig, clock: Clock) -> None:
        self._clock = clock
        self._nodes: dict[str, _Node] = {}
        org = cfg.principals.org
        declared: list[tuple[str, NodeConfig]] = [(org, cfg.principals)]
        for tname, team in cfg.principals.teams.items():
            declared.append((f"{org}/{tname}", team))
            declared.extend((f"{org}/{tname}/{p}", proj) for p, proj in team.projects.items())
        for path, node in declared:
            lim = node.limits
            if lim.rpm or lim.tpm or lim.concurrency:
                self._nodes[path] = _Node(path, lim.rpm, lim.tpm, lim.concurrency)
        self._paths: dict[tuple[str, ...], list[_Node]] = {}

    def _on_path(self, principal: Principal) -> list[_Node]:
        scope = principal.scope
        found = self._paths.get(scope)
        if found is None:
            parts = [principal.org, *scope]
            paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            found = self._paths[scope] = [self._nodes[p] for p in paths if p in self._nodes]
        return found

    def active(self, principal: Principal) -> bool:
        """Whether any limit applies to the principal."""
        return bool(self._on_path(principal))

    def acquire(self, principal: Principal, tokens: int) -> Permit:
        """Take one request, ``tokens`` tokens and one in-flight slot on every limited node, or none."""
        nodes = self._on_path(principal)
        if not nodes:
            return Permit()
        now = self._clock.monotonic()
        for node in nodes:
            self._check(node, now, tokens)
        for node in nodes:
            if node.rpm:
                node.request_tat = max(node.request_tat, now) + WINDOW_S / node.rpm
            if node.tpm:
                node.token_tat = max(node.token_tat, now) + tokens * WINDOW_S / node.tpm
            node.in_flight += 1
        return Permit(list(nodes), tokens)

    def _check(self, node: _Node, now: float, tokens: int) -> None:
        if node.concurrency and node.in_flight >= node.concurrency:
            raise RateLimited(
                f"rate limit of {node.path}: {node.concurrency} requests in flight", retry_after=1.0
            )
        if node.rpm:
            ahead = max(node.request_tat, now) + WINDOW_S / node.rpm - now
            if ahead > WINDOW_S:
                raise RateLimited(
                    f"rate limit of {node.path}: {node.rpm} requests per minute",
                    retry_after=ahead - WINDOW_S,
                )
        if node.tpm:
            if tokens > node.tpm:
                raise RateLimited(
                    f"request of up to {tokens} tokens exceeds {node.path}'s {node.tpm} tokens per minute"
                )
            ahead = max(node.token_tat, now) + tokens * WINDOW_S / node.tpm - now
            if ahead > WINDOW_S:
                raise RateLimited(
                    f"rate limit of {node.path}: {node.tpm} tokens per minute",
                    retry_after=ahead - WINDOW_S,
                )

    def release(self, permit: Permit, used_tokens: int | None) -> None:
        """End the call: free its slot; give back unused tokens (all of them and the request if None)."""
        if permit.released:
            return
        permit.released = True
        refund = permit.tokens if used_tokens is None else max(0, permit.tokens - used_tokens)
        for node in permit.nodes:
            node.in_flight -= 1
            if node.tpm and refund:
                node.token_tat -= refund * WINDOW_S / node.tpm
            if used_tokens is None and node.rpm:
                node.request_tat -= WINDOW_S / node.rpm
