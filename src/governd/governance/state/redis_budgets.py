"""Budget counters in Redis, shared by every gateway replica.

Each budget window is one hash (``spent``, ``reserved``). ``reserve`` runs one
Lua script that checks every claim and holds all of them or none, so the
all-or-none guarantee holds across replicas; ``settle`` moves each claim from
reserved to spent in one transaction. Windows expire a period after they end.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from governd.errors import StateUnavailable
from governd.governance.budgets import BudgetKey, Stale

# KEYS[1] is the budgets' generation, ARGV[1] the one the caller's limits come from: older
# limits hold nothing (-1), so a replica that missed a change reloads before it reserves.
_RESERVE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then
  return -1
end
for i = 2, #KEYS do
  local spent = tonumber(redis.call('HGET', KEYS[i], 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
  if spent + reserved + tonumber(ARGV[2 * i - 2]) > tonumber(ARGV[2 * i - 1]) + 1e-12 then
    return i - 1
  end
end
for i = 2, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', ARGV[2 * i - 2])
  redis.call('EXPIRE', KEYS[i], ARGV[2 * #KEYS])
end
return 0
"""
_GENERATION = "governd:budgets:generation"

_TTL_S = 40 * 86_400  # longer than the longest period, so a window outlives its own end
_POOL = 64
_P = ParamSpec("_P")
_T = TypeVar("_T")


def guarded(fn: Callable[_P, Coroutine[Any, Any, _T]]) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Turn a Redis failure into a 503 that refuses the call (fail closed)."""

    @functools.wraps(fn)
    async def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await fn(*args, **kwargs)
        except RedisError as exc:
            raise StateUnavailable(
                f"shared state (Redis) unavailable: {type(exc).__name__}", retry_after=1.0
            ) from None

    return run


def window_key(key: BudgetKey, window: float) -> str:
    """The Redis key of a budget's window."""
    return f"governd:budget:{key.node}:{key.unit}:{key.period}:{int(window)}"


class RedisState:
    """``BudgetState`` over a Redis server (``state: redis://...``)."""

    shared = True

    def __init__(self, url: str) -> None:
        # Callers wait for a connection rather than fail when all are busy.
        pool = BlockingConnectionPool.from_url(url, max_connections=_POOL, timeout=5)
        self._redis: Redis = Redis(connection_pool=pool)
        self._reserve = self._redis.register_script(_RESERVE)

    def cells(self, slots: Sequence[tuple[BudgetKey, float]]) -> list[str]:
        """A cell is the window's Redis key."""
        return [window_key(key, window) for key, window in slots]

    @guarded
    async def reserve(
        self,
        cells: Sequence[str],
        amounts: Sequence[float],
        limits: Sequence[float],
        generation: int,
    ) -> int | Stale | None:
        args: list[Any] = [x for pair in zip(amounts, limits, strict=True) for x in map(repr, pair)]
        keys = [_GENERATION, *cells]
        refused = int(await self._reserve(keys=keys, args=[generation, *args, _TTL_S]))
        if refused < 0:
            return "stale"
        return refused - 1 if refused else None

    @guarded
    async def generation(self) -> int:
        return int(await self._redis.get(_GENERATION) or 0)

    @guarded
    async def bump(self) -> None:
        await self._redis.incr(_GENERATION)

    @guarded
    async def settle(
        self, cells: Sequence[str], held: Sequence[float], actual: Sequence[float]
    ) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            for k, amount, used in zip(cells, held, actual, strict=True):
                tx.hincrbyfloat(k, "reserved", -amount)
                tx.hincrbyfloat(k, "spent", used)
            await tx.execute()

    @guarded
    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        spent, reserved = await self._redis.hmget(window_key(key, window), ["spent", "reserved"])
        return float(spent or 0.0), max(0.0, float(reserved or 0.0))

    @guarded
    async def usages(self, cells: Sequence[str]) -> list[tuple[float, float]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for k in cells:
                pipe.hmget(k, ["spent", "reserved"])
            found = await pipe.execute()
        return [(float(s or 0.0), max(0.0, float(r or 0.0))) for s, r in found]

    @guarded
    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Start a window at ``spent`` unless another replica already did."""
        k = window_key(key, window)
        await self._redis.hsetnx(k, "spent", repr(spent))
        await self._redis.expire(k, _TTL_S)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
