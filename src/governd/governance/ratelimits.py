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
replicas agree). A principal's limited nodes are a ``LimitPath``, resolved once,
with the state's handles of their counters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from governd.actions import Principal
from governd.clock import Clock
from governd.config import GovernConfig
from governd.errors import RateLimited

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


@dataclass(frozen=True, slots=True)
class LimitPath:
    """The limited nodes from the org down to a principal, and the state's handles of them."""

    limits: list[NodeLimit]
    #: Opaque to all but the state that made them (``LimitState.cells``).
    cells: Sequence[Any]


@dataclass(slots=True)
class Permit:
    """What a call took from its path's limits, to be given back once."""

    path: LimitPath
    tokens: int = 0
    #: The state's name of the call's in-flight slots (Redis's lease), if it needs one.
    lease: str = ""
    released: bool = False


class LimitState(Protocol):
    """Where the counters live."""

    def cells(self, limits: list[NodeLimit]) -> Sequence[Any]:
        """Handles of the counters of each node, for the calls below."""
        ...

    async def acquire(self, path: LimitPath, tokens: int) -> Permit | Refusal:
        """Charge every node, or none and say which refused."""
        ...

    async def release(self, permit: Permit, refund_tokens: int, refund_request: bool) -> None:
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
    """Counters in this process, on the injected clock. Atomic: nothing here awaits.

    A cell is the node's ``_Counters`` itself.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._nodes: defaultdict[str, _Counters] = defaultdict(_Counters)

    def cells(self, limits: list[NodeLimit]) -> list[_Counters]:
        return [self._nodes[lim.path] for lim in limits]

    async def acquire(self, path: LimitPath, tokens: int) -> Permit | Refusal:
        now = self._clock.monotonic()
        pairs = list(zip(path.limits, path.cells, strict=True))
        for lim, c in pairs:
            refused = check(lim, now, tokens, c.in_flight, c.request_tat, c.token_tat)
            if refused is not None:
                return refused
        for lim, c in pairs:
            if lim.rpm:
                tat = c.request_tat
                c.request_tat = (tat if tat > now else now) + WINDOW_S / lim.rpm
            if lim.tpm:
                tat = c.token_tat
                c.token_tat = (tat if tat > now else now) + tokens * WINDOW_S / lim.tpm
            c.in_flight += 1
        return Permit(path, tokens)

    async def release(self, permit: Permit, refund_tokens: int, refund_request: bool) -> None:
        path = permit.path
        for lim, c in zip(path.limits, path.cells, strict=True):
            c.in_flight -= 1
            if lim.tpm and refund_tokens:
                c.token_tat -= refund_tokens * WINDOW_S / lim.tpm
            if refund_request and lim.rpm:
                c.request_tat -= WINDOW_S / lim.rpm

    async def aclose(self) -> None:
        """Nothing to release."""


class RateLimits:
    """The limits configured on the tree, checked along a principal's path."""

    def __init__(self, cfg: GovernConfig, state: LimitState) -> None:
        self.state = state
        self._limits: dict[str, NodeLimit] = {}
        for node in cfg.principals.walk():
            lim = node.config.limits
            if lim.rpm or lim.tpm or lim.concurrency:
                self._limits[node.path] = NodeLimit(node.path, lim.rpm, lim.tpm, lim.concurrency)
        self._paths: dict[tuple[str, ...], LimitPath] = {}

    def path(self, principal: Principal) -> LimitPath:
        """The limited nodes from the org down to the principal, with their counters."""
        scope = principal.scope
        found = self._paths.get(scope)
        if found is None:
            parts = [principal.org, *scope]
            paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            limits = [self._limits[p] for p in paths if p in self._limits]
            found = self._paths[scope] = LimitPath(limits, self.state.cells(limits))
        return found

    def on_path(self, principal: Principal) -> list[NodeLimit]:
        """The limited nodes from the org down to the principal."""
        return self.path(principal).limits

    def active(self, principal: Principal) -> bool:
        """Whether any limit applies to the principal."""
        return bool(self.path(principal).limits)

    async def acquire(self, principal: Principal, tokens: int) -> Permit:
        """Take a request, ``tokens`` tokens and an in-flight slot on every limited node, or none."""
        return await self.acquire_on(self.path(principal), tokens)

    async def acquire_on(self, path: LimitPath, tokens: int) -> Permit:
        """``acquire`` on a path already at hand."""
        if not path.limits:
            return Permit(path, tokens)
        taken = await self.state.acquire(path, tokens)
        if isinstance(taken, Refusal):
            raise _error(taken, tokens)
        return taken

    async def release(self, permit: Permit, used_tokens: int | None) -> None:
        """End the call: free its slots; give back unused tokens (all of them, and the request, if None)."""
        if permit.released or not permit.path.limits:
            permit.released = True
            return
        permit.released = True
        refund = permit.tokens if used_tokens is None else max(0, permit.tokens - used_tokens)
        await self.state.release(permit, refund, used_tokens is None)


def _error(refused: Refusal, tokens: int) -> RateLimited:
    lim = refused.limit
    messages = {
        "concurrency": f"rate limit of {lim.path}: {lim.concurrency} requests in flight",
        "rpm": f"rate limit of {lim.path}: {lim.rpm} requests per minute",
        "tpm": f"rate limit of {lim.path}: {lim.tpm} tokens per minute",
        "too_big": f"request of up to {tokens} tokens exceeds {lim.path}'s {lim.tpm} tokens per minute",
    }
    return RateLimited(messages[refused.kind], retry_after=refused.retry_after)
