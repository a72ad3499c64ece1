"""Rate limits on a manual clock: bursts, steady rate, Retry-After, refunds, all or none."""

from __future__ import annotations

import pytest

from governd.actions import Principal
from governd.clock import ManualClock
from governd.config import parse_config
from governd.errors import RateLimited
from governd.governance.ratelimits import RateLimits

WHO = Principal("acme", "t", "p", "key_1")


def limits(yaml: str) -> tuple[RateLimits, ManualClock]:
    clock = ManualClock()
    return RateLimits(parse_config(yaml), clock), clock


def test_rpm_allows_a_minute_of_burst_then_the_steady_rate() -> None:
    rl, clock = limits(
        "principals: {org: acme, teams: {t: {limits: {rpm: 60}, projects: {p: {}}}}}\n"
    )
    for _ in range(60):
        rl.release(rl.acquire(WHO, 0), 0)
    with pytest.raises(RateLimited) as info:
        rl.acquire(WHO, 0)
    assert info.value.retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    rl.acquire(WHO, 0)
    with pytest.raises(RateLimited):
        rl.acquire(WHO, 0)


def test_tpm_charges_the_bound_and_refunds_what_was_not_used() -> None:
    rl, _ = limits(
        "principals: {org: acme, limits: {tpm: 1000}, teams: {t: {projects: {p: {}}}}}\n"
    )
    first = rl.acquire(WHO, 600)
    with pytest.raises(RateLimited) as info:
        rl.acquire(WHO, 600)
    assert info.value.retry_after == pytest.approx(12.0)
    rl.release(first, 100)
    rl.acquire(WHO, 600)


def test_a_request_larger_than_the_whole_tpm_never_fits() -> None:
    rl, _ = limits("principals: {org: acme, limits: {tpm: 100}, teams: {t: {projects: {p: {}}}}}\n")
    with pytest.raises(RateLimited, match="exceeds") as info:
        rl.acquire(WHO, 101)
    assert info.value.retry_after is None


def test_concurrency_counts_requests_in_flight() -> None:
    rl, _ = limits(
        "principals: {org: acme, teams: {t: {projects: {p: {limits: {concurrency: 2}}}}}}\n"
    )
    a, _b = rl.acquire(WHO, 0), rl.acquire(WHO, 0)
    with pytest.raises(RateLimited, match="in flight"):
        rl.acquire(WHO, 0)
    rl.release(a, 0)
    rl.release(a, 0)  # once only
    rl.acquire(WHO, 0)
    with pytest.raises(RateLimited):
        rl.acquire(WHO, 0)


def test_all_or_none_along_the_path() -> None:
    rl, _ = limits(
        "principals: {org: acme, limits: {rpm: 100}, teams: {t: {limits: {rpm: 1}, projects: {p: {}}}}}\n"
    )
    rl.acquire(WHO, 0)
    for _ in range(5):
        with pytest.raises(RateLimited, match="acme/t"):
            rl.acquire(WHO, 0)
    # The org's budget of requests was not consumed by the refused ones.
    other = Principal("acme", "u")
    rl2, _ = limits(
        "principals: {org: acme, limits: {rpm: 2}, teams: {t: {limits: {rpm: 1}}, u: {}}}\n"
    )
    rl2.acquire(Principal("acme", "t"), 0)
    with pytest.raises(RateLimited):
        rl2.acquire(Principal("acme", "t"), 0)
    rl2.acquire(other, 0)


def test_refused_downstream_gives_the_request_back() -> None:
    rl, _ = limits("principals: {org: acme, limits: {rpm: 1}, teams: {t: {projects: {p: {}}}}}\n")
    rl.release(rl.acquire(WHO, 0), None)
    rl.acquire(WHO, 0)


def test_unlimited_principals_take_nothing() -> None:
    rl, _ = limits("principals: {org: acme, teams: {t: {}}}\n")
    assert not rl.active(WHO)
    assert rl.acquire(WHO, 10**9).nodes == []
