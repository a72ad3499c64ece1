"""Rate-limit counters in Redis, shared by every gateway replica.

One hash per limited node holds the GCRA arrival times of requests and
tokens; in-flight requests are leased members of a sorted set, so a replica
that dies mid-call frees its slots when the lease (``LEASE_S``) runs out. One
Lua script checks every node and charges all of them or none, on Redis's own
clock, so replicas never disagree about time.
"""

from __future__ import annotations

from governd.governance.ratelimits import (
    WINDOW_S,
    Kind,
    LimitPath,
    LimitState,
    NodeLimit,
    Permit,
    Refusal,
)
from governd.governance.state.redis_budgets import connect, guarded
from governd.ids import new_id

LEASE_S = 900  # the longest a call may hold an in-flight slot of a replica that died

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local tokens = tonumber(ARGV[1])
local id = ARGV[2]
local lease = tonumber(ARGV[3])
local w = tonumber(ARGV[4])
local n = #KEYS / 2
for i = 1, n do
  local rpm, tpm, conc = tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i]), tonumber(ARGV[4 + 3 * i])
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[n + i], '-inf', now)
    if redis.call('ZCARD', KEYS[n + i]) >= conc then return {i, 'concurrency', '1'} end
  end
  if rpm > 0 then
    local tat = tonumber(redis.call('HGET', KEYS[i], 'rtat') or '0')
    local ahead = math.max(tat, now) + w / rpm - now
    if ahead > w then return {i, 'rpm', tostring(ahead - w)} end
  end
  if tpm > 0 then
    if tokens > tpm then return {i, 'too_big', '0'} end
    local tat = tonumber(redis.call('HGET', KEYS[i], 'ttat') or '0')
    local ahead = math.max(tat, now) + tokens * w / tpm - now
    if ahead > w then return {i, 'tpm', tostring(ahead - w)} end
  end
end
for i = 1, n do
  local rpm, tpm, conc = tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i]), tonumber(ARGV[4 + 3 * i])
  if rpm > 0 then
    local tat = tonumber(redis.call('HGET', KEYS[i], 'rtat') or '0')
    redis.call('HSET', KEYS[i], 'rtat', tostring(math.max(tat, now) + w / rpm))
  end
  if tpm > 0 then
    local tat = tonumber(redis.call('HGET', KEYS[i], 'ttat') or '0')
    redis.call('HSET', KEYS[i], 'ttat', tostring(math.max(tat, now) + tokens * w / tpm))
  end
  redis.call('EXPIRE', KEYS[i], 3600)
  if conc > 0 then
    redis.call('ZADD', KEYS[n + i], now + lease, id)
    redis.call('EXPIRE', KEYS[n + i], lease)
  end
end
return {0}
"""

_RELEASE = """
local refund = tonumber(ARGV[1])
local whole = ARGV[2] == '1'
local id = ARGV[3]
local w = tonumber(ARGV[4])
local n = #KEYS / 2
for i = 1, n do
  local rpm, tpm = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  redis.call('ZREM', KEYS[n + i], id)
  if tpm > 0 and refund > 0 then redis.call('HINCRBYFLOAT', KEYS[i], 'ttat', -refund * w / tpm) end
  if whole and rpm > 0 then redis.call('HINCRBYFLOAT', KEYS[i], 'rtat', -w / rpm) end
end
return 0
"""


class RedisLimits:
    """``LimitState`` over a Redis server."""

    def __init__(self, url: str) -> None:
        self._redis = connect(url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._release = self._redis.register_script(_RELEASE)

    def cells(self, limits: list[NodeLimit]) -> list[str]:
        """A node's cells are its two Redis keys: arrival times, then in-flight leases."""
        return [f"governd:limit:{lim.path}" for lim in limits] + [
            f"governd:inflight:{lim.path}" for lim in limits
        ]

    @guarded
    async def acquire(self, path: LimitPath, tokens: int) -> Permit | Refusal:
        lease = new_id("lim_")
        args: list[str | int | float] = [tokens, lease, LEASE_S, WINDOW_S]
        for lim in path.limits:
            args += [lim.rpm or 0, lim.tpm or 0, lim.concurrency or 0]
        result = await self._acquire(keys=list(path.cells), args=args)
        index = int(result[0])
        if not index:
            return Permit(path, tokens, lease)
        kind: Kind = result[1].decode()
        retry = float(result[2])
        return Refusal(path.limits[index - 1], kind, None if kind == "too_big" else retry)

    @guarded
    async def release(self, permit: Permit, refund_tokens: int, refund_request: bool) -> None:
        args: list[str | int | float] = [refund_tokens, int(refund_request), permit.lease, WINDOW_S]
        for lim in permit.path.limits:
            args += [lim.rpm or 0, lim.tpm or 0]
        await self._release(keys=list(permit.path.cells), args=args)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


def redis_limits(url: str) -> LimitState:
    """The Redis limit state (kept separate so that ``redis`` stays an optional extra)."""
    return RedisLimits(url)
