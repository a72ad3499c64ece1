"""Rate limits per node of the principal tree: requests/min, tokens/min, requests in flight.

Requests and tokens per minute use GCRA (the generic cell rate algorithm): a
node keeps one "theoretical arrival time"; each request pushes it forward by
its cost divided by the rate, and is refused when that would put it more than
a minute ahead of now. That allows a full minute's worth in a burst, then the
steady rate, and says exactly when a refused request would fit
(``Retry-After``). Tokens are charged at their bound before the call and the
unused part is given back after. Every node on the path is checked, then all
are charged, or none.

The counters live behind ``LimitState``: in this process (on the injected
clock) or in Redis (``governd.governance.state.redis_limits``, on Redis's clock, so
replicas agree).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal, Protocol

from governd.actions import Principal
from governd.clock import Clock
from governd.config import GovernConfig
from governd.errors import RateLimited
from governd.ids import new_id

WINDOW_S = 60.0
Kind = Literal["concurrency", "rpm", "tpm", "too_big"]


@dataclass(frozen=True, slots=True)
class NodeLimit:
    """The limits configured on one node (0 or None: no such limit)."""

    path: str
    rpm: int | None
    tpm: int | None
    concurrency: int | None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which limit of which node refused, and when the request would fit."""

    limit: NodeLimit
    kind: Kind
    retry_after: float | None


class LimitState(Protocol):
    """Where the counters live."""

    async def acquire(self, permit_id: str, limits: list[NodeLimit], tokens: int) -> Refusal | None:
        """Charge every node, or none and say which refused."""
        ...

    async def release(
        self, permit_id: str, limits: list[NodeLimit], refund_tokens: int, refund_request: bool
    ) -> None:
        """Free the in-flight slots and give back what was not used."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def check(
    limit: NodeLimit, now: float, tokens: int, in_flight: int, request_tat: float, token_tat: float
) -> Refusal | None:
    """Whether one node can take a request of ``tokens`` at ``now`` (GCRA; shared with tests)."""
    if limit.concurrency and in_flight >= limit.concurrency:
        return Refusal(limit, "concurrency", 1.0)
    if limit.rpm:
        ahead = max(request_tat, now) + WINDOW_S / limit.rpm - now
        if ahead > WINDOW_S:
            return Refusal(limit, "rpm", ahead - WINDOW_S)
    if limit.tpm:
        if tokens > limit.tpm:
            return Refusal(limit, "too_big", None)
        ahead = max(token_tat, now) + tokens * WINDOW_S / limit.tpm - now
        if ahead > WINDOW_S:
            return Refusal(limit, "tpm", ahead - WINDOW_S)
    return None


@dataclass(slots=True)
class _Counters:
    request_tat: float = 0.0
    token_tat: float = 0.0
    in_flight: int = 0


class LocalLimits:
    """Counters in this process, on the injected clock. Atomic: nothing here awaits."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._nodes: defaultdict[str, _Counters] = defaultdict(_Counters)

    async def acquire(self, permit_id: str, limits: list[NodeLimit], tokens: int) -> Refusal | None:
        now = self._clock.monotonic()
        nodes = self._nodes
        counters = [nodes[lim.path] for lim in limits]
        for lim, c in zip(limits, counters, strict=True):
            refused = check(lim, now, tokens, c.in_flight, c.request_tat, c.token_tat)
            if refused is not None:
                return refused
        for lim, c in zip(limits, counters, strict=True):
            if lim.rpm:
                c.request_tat = max(c.request_tat, now) + WINDOW_S / lim.rpm
            if lim.tpm:
                c.token_tat = max(c.token_tat, now) + tokens * WINDOW_S / lim.tpm
            c.in_flight += 1
        return None

    async def release(
        self, permit_id: str, limits: list[NodeLimit], refund_tokens: int, refund_request: bool
    ) -> None:
        for lim in limits:
            c = self._nodes[lim.path]
            c.in_flight -= 1
            if lim.tpm and refund_tokens:
                c.token_tat -= refund_tokens * WINDOW_S / lim.tpm
            if refund_request and lim.rpm:
                c.request_tat -= WINDOW_S / lim.rpm

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass(slots=True)
class Permit:
    """What a call took from its path's limits, to be given back once."""

    id: str = ""
    limits: list[NodeLimit] = field(default_factory=list)
    tokens: int = 0
    released: bool = False


class RateLimits:
    """The limits configured on the tree, checked along a principal's path."""

    def __init__(self, cfg: GovernConfig, state: LimitState) -> None:
        self.state = state
        self._limits: dict[str, NodeLimit] = {}
        for node in cfg.principals.walk():
            lim = node.config.limits
            if lim.rpm or lim.tpm or lim.concurrency:
                self._limits[node.path] = NodeLimit(node.path, lim.rpm, lim.tpm, lim.concurrency)
        self._paths: dict[tuple[str, ...], list[NodeLimit]] = {}

    def on_path(self, principal: Principal) -> list[NodeLimit]:
        """The limited nodes from the org down to the principal."""
        scope = principal.scope
        found = self._paths.get(scope)
        if found is None:
            parts = [principal.org, *scope]
            paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            found = self._paths[scope] = [self._limits[p] for p in paths if p in self._limits]
        return found

    def active(self, principal: Principal) -> bool:
        """Whether any limit applies to the principal."""
        return bool(self.on_path(principal))

    async def acquire(self, principal: Principal, tokens: int) -> Permit:
        """Take a request, ``tokens`` tokens and an in-flight slot on every limited node, or none."""
        limits = self.on_path(principal)
        if not limits:
            return Permit()
        permit = Permit(new_id("lim_"), limits, tokens)
        refused = await self.state.acquire(permit.id, limits, tokens)
        if refused is not None:
            raise _error(refused, tokens)
        return permit

    async def release(self, permit: Permit, used_tokens: int | None) -> None:
        """End the call: free its slots; give back unused tokens (all of them, and the request, if None)."""
        if permit.released or not permit.limits:
            permit.released = True
            return
        permit.released = True
        refund = permit.tokens if used_tokens is None else max(0, permit.tokens - used_tokens)
        await self.state.release(permit.id, permit.limits, refund, used_tokens is None)


def _error(refused: Refusal, tokens: int) -> RateLimited:
    lim = refused.limit
    messages = {
        "concurrency": f"rate limit of {lim.path}: {lim.concurrency} requests in flight",
        "rpm": f"rate limit of {lim.path}: {lim.rpm} requests per minute",
        "tpm": f"rate limit of {lim.path}: {lim.tpm} tokens per minute",
        "too_big": f"request of up to {tokens} tokens exceeds {lim.path}'s {lim.tpm} tokens per minute",
    }
    return RateLimited(messages[refused.kind], retry_after=refused.retry_after)
