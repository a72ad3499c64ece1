"""The budget state contract, on both backends: in process and a real Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from governd.governance.budgets import BudgetKey, BudgetState, Claim
from governd.governance.state.local_budgets import LocalState
from governd.governance.state.redis_budgets import RedisState

_NODES = itertools.count()


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[BudgetState]:
    found: BudgetState = LocalState() if request.param == "memory" else RedisState(redis_url)
    yield found
    await found.aclose()


def key() -> BudgetKey:
    return BudgetKey(f"acme/t{next(_NODES)}", "usd", "day")


async def test_all_or_none(state: BudgetState) -> None:
    a, b = key(), key()
    assert (
        await state.reserve(
            [Claim(a, 0, 0.6, 1.0), Claim(b, 0, 0.6, 10.0)], await state.generation()
        )
        is None
    )
    refused = await state.reserve(
        [Claim(b, 0, 0.6, 10.0), Claim(a, 0, 0.6, 1.0)], await state.generation()
    )
    assert refused is not None and refused.key == a
    assert await state.usage(b, 0) == (0.0, pytest.approx(0.6))


async def test_settle_moves_reserved_to_spent(state: BudgetState) -> None:
    a = key()
    held = [Claim(a, 0, 0.8, 1.0)]
    assert await state.reserve(held, await state.generation()) is None
    await state.settle(held, [0.25])
    spent, reserved = await state.usage(a, 0)
    assert spent == pytest.approx(0.25) and reserved == pytest.approx(0.0, abs=1e-9)


async def test_windows_are_separate(state: BudgetState) -> None:
    a = key()
    assert await state.reserve([Claim(a, 0, 1.0, 1.0)], await state.generation()) is None
    assert await state.reserve([Claim(a, 86_400, 1.0, 1.0)], await state.generation()) is None


async def test_preload_only_initialises(state: BudgetState) -> None:
    a = key()
    await state.preload(a, 0, 0.5)
    await state.preload(a, 0, 0.1)
    assert (await state.usage(a, 0))[0] == pytest.approx(0.5)
    assert await state.reserve([Claim(a, 0, 0.6, 1.0)], await state.generation()) is not None


async def test_concurrent_reservations_never_pass_the_limit(state: BudgetState) -> None:
    a, g = key(), await state.generation()
    results = await asyncio.gather(*(state.reserve([Claim(a, 0, 0.1, 1.0)], g) for _ in range(40)))
    assert sum(r is None for r in results) == 10


async def test_unreachable_redis_refuses_instead_of_admitting() -> None:
    from governd.errors import StateUnavailable
    from governd.server.launcher import free_port

    dead = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StateUnavailable) as info:
        await dead.reserve([Claim(key(), 0, 0.1, 1.0)], 0)
    assert info.value.status == 503 and info.value.code == "state_unavailable"
    await dead.aclose()


async def test_limits_older_than_the_state_hold_nothing(state: BudgetState) -> None:
    """After a bump, a reservation made with the limits of before is stale, on every backend."""
    a = key()
    before = await state.generation()
    await state.bump()
    assert await state.generation() == before + 1
    assert await state.reserve([Claim(a, 0, 0.5, 1.0)], before) == "stale"
    assert await state.reserve([], before) == "stale"
    assert await state.usage(a, 0) == (0.0, 0.0)
    assert await state.reserve([Claim(a, 0, 0.5, 1.0)], before + 1) is None
