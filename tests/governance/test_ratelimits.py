"""Rate limits: GCRA on a manual clock in process; the same contract on a real Redis."""

from __future__ import annotations

import pytest

from governd.actions import Principal
from governd.clock import ManualClock
from governd.config import parse_config
from governd.errors import RateLimited
from governd.governance.ratelimits import LocalLimits, RateLimits
from governd.governance.state.redis_limits import RedisLimits

WHO = Principal("acme", "t", "p", "key_1")


def limits(yaml: str) -> tuple[RateLimits, ManualClock]:
    clock = ManualClock()
    return RateLimits(parse_config(yaml), LocalLimits(clock)), clock


async def test_rpm_allows_a_minute_of_burst_then_the_steady_rate() -> None:
    rl, clock = limits(
        "principals: {org: acme, teams: {t: {limits: {rpm: 60}, projects: {p: {}}}}}\n"
    )
    for _ in range(60):
        await rl.release(await rl.acquire(WHO, 0), 0)
    with pytest.raises(RateLimited) as info:
        await rl.acquire(WHO, 0)
    assert info.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    await rl.acquire(WHO, 0)
    with pytest.raises(RateLimited):
        await rl.acquire(WHO, 0)


async def test_tpm_charges_the_bound_and_refunds_what_was_not_used() -> None:
    rl, _ = limits(
        "principals: {org: acme, limits: {tpm: 1000}, teams: {t: {projects: {p: {}}}}}\n"
    )
    first = await rl.acquire(WHO, 600)
    with pytest.raises(RateLimited) as info:
        await rl.acquire(WHO, 600)
    assert info.value.retry_after == pytest.approx(12.0)
    await rl.release(first, 100)
    await rl.acquire(WHO, 600)


async def test_a_request_larger_than_the_whole_tpm_never_fits() -> None:
    rl, _ = limits("principals: {org: acme, limits: {tpm: 100}, teams: {t: {projects: {p: {}}}}}\n")
    with pytest.raises(RateLimited, match="exceeds") as info:
        await rl.acquire(WHO, 101)
    assert info.value.retry_after is None


async def test_concurrency_counts_requests_in_flight() -> None:
    rl, _ = limits(
        "principals: {org: acme, teams: {t: {projects: {p: {limits: {concurrency: 2}}}}}}\n"
    )
    a = await rl.acquire(WHO, 0)
    await rl.acquire(WHO, 0)
    with pytest.raises(RateLimited, match="in flight"):
        await rl.acquire(WHO, 0)
    await rl.release(a, 0)
    await rl.release(a, 0)  # once only
    await rl.acquire(WHO, 0)
    with pytest.raises(RateLimited):
        await rl.acquire(WHO, 0)


async def test_all_or_none_along_the_path() -> None:
    rl, _ = limits(
        "principals: {org: acme, limits: {rpm: 2}, teams: {t: {limits: {rpm: 1}}, u: {}}}\n"
    )
    await rl.acquire(Principal("acme", "t"), 0)
    with pytest.raises(RateLimited, match="acme/t"):
        await rl.acquire(Principal("acme", "t"), 0)
    # The refused request took nothing from the org: a sibling still fits.
    await rl.acquire(Principal("acme", "u"), 0)


async def test_refused_downstream_gives_the_request_back() -> None:
    rl, _ = limits("principals: {org: acme, limits: {rpm: 1}, teams: {t: {projects: {p: {}}}}}\n")
    await rl.release(await rl.acquire(WHO, 0), None)
    await rl.acquire(WHO, 0)


async def test_unlimited_principals_take_nothing() -> None:
    rl, _ = limits("principals: {org: acme, teams: {t: {}}}\n")
    assert not rl.active(WHO)
    assert (await rl.acquire(WHO, 10**9)).path.limits == []


async def test_replicas_sharing_redis_share_the_limits(redis_url: str) -> None:
    cfg = parse_config(
        "principals: {org: rl, teams: {t: {limits: {rpm: 5, concurrency: 2, tpm: 100000}}}}\n"
    )
    a, b = RateLimits(cfg, RedisLimits(redis_url)), RateLimits(cfg, RedisLimits(redis_url))
    who = Principal("rl", "t")
    with pytest.raises(RateLimited, match="exceeds"):
        await b.acquire(who, 100_001)
    held = [await a.acquire(who, 100), await b.acquire(who, 100)]
    with pytest.raises(RateLimited, match="in flight"):
        await a.acquire(who, 100)
    for permit in held:
        await (a if permit is held[0] else b).release(permit, 100)
    for rl in (a, b, a):  # requests 3 to 5 of the minute, on either replica
        await rl.release(await rl.acquire(who, 100), 100)
    with pytest.raises(RateLimited, match="5 requests per minute") as info:
        await b.acquire(who, 100)
    assert 0 < (info.value.retry_after or 0) <= 12
    await a.state.aclose()
    await b.state.aclose()
