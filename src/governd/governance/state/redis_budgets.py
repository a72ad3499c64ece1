"""Budget counters in Redis, shared by every gateway replica.

Each budget window is one hash (``spent``, ``reserved``, ``seeded``), with the
holds in it by name (``:holds``, their amounts) and their leases (``:leases``,
a sorted set of expiry times). ``reserve`` runs one Lua script that frees
expired holds, checks every claim and holds all of them or none, so the
all-or-none guarantee holds across replicas; ``settle`` releases the hold
(unless its lease freed it) and charges what was used, in one script. A hold
of a replica that died (``kill -9``) or never settled (Redis failed just
then) is freed when its lease runs out.

A window counts only once it was *seeded* from the ledger: one that Redis
does not know (it restarted without persistence, or the period just began)
is refused as unseeded until a replica loads its spend from the ledger, so
losing Redis's memory never resets a budget. Windows expire a period after
they end.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError

from governd.errors import StateUnavailable
from governd.governance.budgets import BudgetKey, Stale, Unseeded
from governd.ids import new_id

# KEYS[1] is the budgets' generation, ARGV[1] the one the caller's limits come from: older
# limits hold nothing (-1), so a replica that missed a change reloads before it reserves.
# Then three keys per window (counts, holds, leases); -1 - i: window i was never seeded.
# ARGV[5] = '1': a hold that exists already is kept as it is (once).
_RESERVE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then
  return -1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local id, lease, ttl = ARGV[2], ARGV[3], ARGV[4]
local n = (#KEYS - 1) / 3
if ARGV[5] == '1' and n > 0 and redis.call('HEXISTS', KEYS[3], id) == 1 then
  return 0
end
for i = 1, n do
  local w, h, e = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  if redis.call('HEXISTS', w, 'seeded') == 0 then
    return -1 - i
  end
  local gone = redis.call('ZRANGEBYSCORE', e, '-inf', now)
  if #gone > 0 then
    local freed = 0
    for _, g in ipairs(gone) do
      freed = freed + tonumber(redis.call('HGET', h, g) or '0')
      redis.call('HDEL', h, g)
    end
    redis.call('ZREMRANGEBYSCORE', e, '-inf', now)
    redis.call('HINCRBYFLOAT', w, 'reserved', tostring(-freed))
  end
  local spent = tonumber(redis.call('HGET', w, 'spent') or '0')
  local reserved = math.max(0, tonumber(redis.call('HGET', w, 'reserved') or '0'))
  if spent + reserved + tonumber(ARGV[4 + 2 * i]) > tonumber(ARGV[5 + 2 * i]) + 1e-12 then
    return i
  end
end
local expiry = lease == 'inf' and '+inf' or tostring(now + tonumber(lease))
for i = 1, n do
  local w, h, e = KEYS[3 * i - 1], KEYS[3 * i], KEYS[3 * i + 1]
  redis.call('HINCRBYFLOAT', w, 'reserved', ARGV[4 + 2 * i])
  redis.call('HINCRBYFLOAT', h, id, ARGV[4 + 2 * i])
  redis.call('ZADD', e, expiry, id)
  redis.call('EXPIRE', w, ttl)
  redis.call('EXPIRE', h, ttl)
  redis.call('EXPIRE', e, ttl)
end
return 0
"""
# Three keys per window; ARGV: the hold's name, the windows' TTL, then what each used.
_SETTLE = """
local id = ARGV[1]
for i = 1, #KEYS / 3 do
  local w, h, e = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local held = redis.call('HGET', h, id)
  if held then
    redis.call('HDEL', h, id)
    redis.call('ZREM', e, id)
    redis.call('HINCRBYFLOAT', w, 'reserved', tostring(-tonumber(held)))
  end
  redis.call('HINCRBYFLOAT', w, 'spent', ARGV[2 + i])
  redis.call('EXPIRE', w, ARGV[2])
end
return 0
"""
# Add the ledger's spend to a window once: settlements may have reached it first.
_SEED = """
if redis.call('HEXISTS', KEYS[1], 'seeded') == 1 then
  return 0
end
redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[1])
redis.call('HSET', KEYS[1], 'seeded', '1')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_GENERATION = "governd:budgets:generation"

_TTL_S = 40 * 86_400  # longer than the longest period, so a window outlives its own end
_POOL = 64
_TIMEOUT_S = 2.0
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


def connect(url: str, decode_responses: bool = False) -> Redis:
    """A pooled client of ``url`` that waits for a free connection, retries a broken one once,
    and gives up on an answer after 2 s.

    After Redis restarts, each pooled connection fails on its next use: one
    retry on a fresh connection keeps that from reaching a caller as a 503.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=_POOL,
        timeout=5,
        # A Redis that stops answering is down: hard budgets fail closed in seconds, not never.
        # (``?socket_timeout=`` in the URL overrides.) A timed-out script may still have run:
        # its hold lapses with its lease, on the safe side.
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
        decode_responses=decode_responses,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[ConnectionError],
    )
    return Redis(connection_pool=pool)


def window_key(key: BudgetKey, window: float) -> str:
    """The Redis key of a budget's window."""
    return f"governd:budget:{key.node}:{key.unit}:{key.period}:{int(window)}"


def _window_keys(counts: str) -> tuple[str, str, str]:
    return counts, counts + ":holds", counts + ":leases"


class RedisState:
    """``BudgetState`` over a Redis server (``state: redis://...``)."""

    shared = True

    def __init__(self, url: str) -> None:
        # Callers wait for a connection rather than fail when all are busy.
        self._redis = connect(url)
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._seed = self._redis.register_script(_SEED)

    def ticket(self) -> str:
        """A hold's name, unique across replicas."""
        return new_id("hold_")

    def cells(self, slots: Sequence[tuple[BudgetKey, float]]) -> list[tuple[str, str, str]]:
        """A cell is the window's Redis keys: its counts, its holds and their leases."""
        return [_window_keys(window_key(key, window)) for key, window in slots]

    @guarded
    async def reserve(
        self,
        cells: Sequence[tuple[str, str, str]],
        amounts: Sequence[float],
        limits: Sequence[float],
        generation: int,
        ticket: str,
        lease_s: float,
        once: bool = False,
    ) -> int | Stale | Unseeded | None:
        args: list[Any] = [x for pair in zip(amounts, limits, strict=True) for x in map(repr, pair)]
        keys = [_GENERATION, *(k for cell in cells for k in cell)]
        lease = "inf" if math.isinf(lease_s) else repr(lease_s)
        found = int(
            await self._reserve(
                keys=keys, args=[generation, ticket, lease, _TTL_S, int(once), *args]
            )
        )
        if found == -1:
            return "stale"
        if found < -1:
            return Unseeded(-found - 2)
        return found - 1 if found else None

    @guarded
    async def generation(self) -> int:
        return int(await self._redis.get(_GENERATION) or 0)

    @guarded
    async def bump(self) -> None:
        await self._redis.incr(_GENERATION)

    @guarded
    async def settle(
        self,
        cells: Sequence[tuple[str, str, str]],
        ticket: str,
        held: Sequence[float],
        actual: Sequence[float],
    ) -> None:
        if not cells:
            return
        keys = [k for cell in cells for k in cell]
        await self._settle(keys=keys, args=[ticket, _TTL_S, *map(repr, actual)])

    @guarded
    async def usage(self, key: BudgetKey, window: float) -> tuple[float, float]:
        spent, reserved = await self._redis.hmget(window_key(key, window), ["spent", "reserved"])
        return float(spent or 0.0), max(0.0, float(reserved or 0.0))

    @guarded
    async def usages(self, cells: Sequence[tuple[str, str, str]]) -> list[tuple[float, float]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for k, _, _ in cells:
                pipe.hmget(k, ["spent", "reserved"])
            found = await pipe.execute()
        return [(float(s or 0.0), max(0.0, float(r or 0.0))) for s, r in found]

    @guarded
    async def preload(self, key: BudgetKey, window: float, spent: float) -> None:
        """Seed a window with ``spent`` unless a replica already did."""
        await self._seed(keys=[window_key(key, window)], args=[repr(spent), _TTL_S])

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
