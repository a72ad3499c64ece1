"""Run counters in Redis, shared by every gateway replica.

One hash per run (``started``, ``steps``, ``tool_calls``, ``spent``,
``reserved``, ``risk``). ``take`` is one Lua script that starts the run if
new, checks every limit and takes the step, so two replicas never both take
a run's last step. A run's hash expires ``idle_ttl_s`` after its last action.
"""

from __future__ import annotations

from typing import Any

from governd.config.agents import RunLimitsConfig
from governd.governance.runs import RunTotals, Take
from governd.governance.state.redis_budgets import connect, guarded

# Same checks, in the same order, as ``runs.refusal``.
_TAKE = """
local k = KEYS[1]
redis.call('HSETNX', k, 'started', ARGV[1])
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', k, 'started', 'steps', 'tool_calls', 'spent', 'reserved', 'risk')
local started, steps, tools = tonumber(h[1]), tonumber(h[2] or '0'), tonumber(h[3] or '0')
local spent, reserved = tonumber(h[4] or '0'), tonumber(h[5] or '0')
local dtools, usd = tonumber(ARGV[2]), tonumber(ARGV[3])
local refused = ''
if ARGV[7] ~= '' and now - started > tonumber(ARGV[7]) then refused = 'wall_s'
elseif ARGV[4] ~= '' and steps + 1 > tonumber(ARGV[4]) then refused = 'steps'
elseif ARGV[5] ~= '' and tools + dtools > tonumber(ARGV[5]) then refused = 'tool_calls'
elseif ARGV[6] ~= '' and spent + reserved + usd > tonumber(ARGV[6]) + 1e-12 then refused = 'usd'
else
  steps = redis.call('HINCRBY', k, 'steps', 1)
  tools = redis.call('HINCRBY', k, 'tool_calls', dtools)
  reserved = tonumber(redis.call('HINCRBYFLOAT', k, 'reserved', ARGV[3]))
end
redis.call('EXPIRE', k, ARGV[8])
return {refused, tostring(started), tostring(steps), tostring(tools), tostring(spent),
        tostring(reserved), h[6] or '0'}
"""

_PRELOAD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'started', ARGV[1], 'steps', ARGV[2], 'tool_calls', ARGV[3],
           'spent', ARGV[4], 'reserved', '0', 'risk', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return 1
"""

_FIELDS = ("started", "steps", "tool_calls", "spent", "reserved", "risk")


def _key(key: str) -> str:
    return f"governd:run:{key}"


def _opt(value: float | None) -> str:
    return "" if value is None else repr(value)


def _totals(values: list[Any]) -> RunTotals:
    started, steps, tools, spent, reserved, risk = (float(v or 0) for v in values)
    return RunTotals(started, int(steps), int(tools), spent, max(0.0, reserved), risk)


class RedisRuns:
    """``RunState`` over a Redis server (``state: redis://...``)."""

    def __init__(self, url: str, idle_ttl_s: float) -> None:
        self._redis = connect(url, decode_responses=True)
        self._take = self._redis.register_script(_TAKE)
        self._preload = self._redis.register_script(_PRELOAD)
        self._ttl = int(idle_ttl_s)

    @guarded
    async def take(
        self, key: str, now: float, take: Take, limits: RunLimitsConfig
    ) -> tuple[str | None, RunTotals]:
        args: list[str | int] = [
            repr(now),
            take.tool_calls,
            repr(take.usd),
            _opt(limits.steps),
            _opt(limits.tool_calls),
            _opt(limits.usd),
            _opt(limits.wall_s),
            self._ttl,
        ]
        refused, *values = await self._take(keys=[_key(key)], args=args)
        return (str(refused) or None), _totals(values)

    @guarded
    async def settle(self, key: str, held: float, used: float) -> None:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hincrbyfloat(_key(key), "reserved", -held)
            tx.hincrbyfloat(_key(key), "spent", used)
            await tx.execute()

    @guarded
    async def add_risk(self, key: str, points: float, now: float) -> float:
        async with self._redis.pipeline(transaction=True) as tx:
            tx.hsetnx(_key(key), "started", repr(now))
            tx.hincrbyfloat(_key(key), "risk", points)
            tx.expire(_key(key), self._ttl)
            _, score, _ = await tx.execute()
        return float(score)

    @guarded
    async def totals(self, key: str) -> RunTotals | None:
        values = await self._redis.hmget(_key(key), list(_FIELDS))
        return None if values[0] is None else _totals(values)

    @guarded
    async def preload(self, key: str, totals: RunTotals) -> None:
        args: list[str | int] = [
            repr(totals.started),
            totals.steps,
            totals.tool_calls,
            repr(totals.spent_usd),
            repr(totals.risk),
            self._ttl,
        ]
        await self._preload(keys=[_key(key)], args=args)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
