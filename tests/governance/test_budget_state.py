"""The budget state contract, on both backends: in process and a real Redis."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from governd.governance.budget_values import HOLD_LEASE_S
from governd.governance.budgets import BudgetKey, BudgetState, Unseeded
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


async def hold(
    state: BudgetState,
    claims: list[tuple[BudgetKey, float, float, float]],
    generation: int,
    ticket: str = "t",
    lease_s: float = HOLD_LEASE_S,
) -> int | str | Unseeded | None:
    """Reserve ``(budget, window, amount, limit)`` claims together, as hold ``ticket``."""
    cells = state.cells([(k, w) for k, w, _, _ in claims])
    amounts, limits = [c[2] for c in claims], [c[3] for c in claims]
    return await state.reserve(cells, amounts, limits, generation, ticket, lease_s)


async def seeded(
    state: BudgetState,
    claims: list[tuple[BudgetKey, float, float, float]],
    generation: int,
    ticket: str = "t",
    lease_s: float = HOLD_LEASE_S,
) -> int | str | Unseeded | None:
    """``hold``, in windows seeded with nothing spent (as a fresh ledger seeds them)."""
    for k, w, _, _ in claims:
        await state.preload(k, w, 0.0)
    return await hold(state, claims, generation, ticket, lease_s)


async def test_all_or_none(state: BudgetState) -> None:
    a, b = key(), key()
    g = await state.generation()
    assert await seeded(state, [(a, 0, 0.6, 1.0), (b, 0, 0.6, 10.0)], g) is None
    assert await seeded(state, [(b, 0, 0.6, 10.0), (a, 0, 0.6, 1.0)], g) == 1
    assert await state.usage(b, 0) == (0.0, pytest.approx(0.6))


async def test_settle_moves_reserved_to_spent(state: BudgetState) -> None:
    a = key()
    assert await seeded(state, [(a, 0, 0.8, 1.0)], await state.generation()) is None
    await state.settle(state.cells([(a, 0)]), "t", [0.8], [0.25])
    spent, reserved = await state.usage(a, 0)
    assert spent == pytest.approx(0.25) and reserved == pytest.approx(0.0, abs=1e-9)
    assert await state.usages(state.cells([(a, 0)])) == [(pytest.approx(0.25), pytest.approx(0.0))]


async def test_windows_are_separate(state: BudgetState) -> None:
    a, g = key(), await state.generation()
    assert await seeded(state, [(a, 0, 1.0, 1.0)], g) is None
    assert await seeded(state, [(a, 86_400, 1.0, 1.0)], g) is None


async def test_preload_only_initialises(state: BudgetState) -> None:
    a = key()
    await state.preload(a, 0, 0.5)
    await state.preload(a, 0, 0.1)
    assert (await state.usage(a, 0))[0] == pytest.approx(0.5)
    assert await seeded(state, [(a, 0, 0.6, 1.0)], await state.generation()) == 0


async def test_cells_made_before_a_preload_see_it(state: BudgetState) -> None:
    """A path built before its window was resumed from the ledger counts what was resumed."""
    a = key()
    cells = state.cells([(a, 0)])
    await state.preload(a, 0, 0.5)
    assert await state.usages(cells) == [(pytest.approx(0.5), 0.0)]


async def test_concurrent_reservations_never_pass_the_limit(state: BudgetState) -> None:
    a, g = key(), await state.generation()
    results = await asyncio.gather(
        *(seeded(state, [(a, 0, 0.1, 1.0)], g, f"t{i}") for i in range(40))
    )
    assert sum(r is None for r in results) == 10


async def test_unreachable_redis_refuses_instead_of_admitting() -> None:
    from governd.errors import StateUnavailable
    from governd.server.launcher import free_port

    dead = RedisState(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StateUnavailable) as info:
        await hold(dead, [(key(), 0, 0.1, 1.0)], 0)
    assert info.value.status == 503 and info.value.code == "state_unavailable"
    await dead.aclose()


async def test_limits_older_than_the_state_hold_nothing(state: BudgetState) -> None:
    """After a bump, a reservation made with the limits of before is stale, on every backend."""
    a = key()
    before = await state.generation()
    await state.bump()
    assert await state.generation() == before + 1
    assert await seeded(state, [(a, 0, 0.5, 1.0)], before) == "stale"
    assert await seeded(state, [], before) == "stale"
    assert await state.usage(a, 0) == (0.0, 0.0)
    assert await seeded(state, [(a, 0, 0.5, 1.0)], before + 1) is None


@pytest.fixture
async def redis_state(redis_url: str) -> AsyncIterator[RedisState]:
    found = RedisState(redis_url)
    yield found
    await found.aclose()


async def test_a_window_redis_never_seeded_is_refused_until_seeded(redis_state: RedisState) -> None:
    a, b = key(), key()
    g = await redis_state.generation()
    await redis_state.preload(a, 0, 0.0)
    assert await hold(redis_state, [(a, 0, 0.1, 1.0), (b, 0, 0.1, 1.0)], g) == Unseeded(1)
    assert await redis_state.usage(a, 0) == (0.0, 0.0), "all or none: nothing held on a"
    await redis_state.preload(b, 0, 0.95)
    assert await hold(redis_state, [(a, 0, 0.1, 1.0), (b, 0, 0.1, 1.0)], g) == 1


async def test_a_hold_whose_lease_ran_out_is_freed_and_never_freed_twice(
    redis_state: RedisState,
) -> None:
    a = key()
    g = await redis_state.generation()
    # A replica that died holding 0.7: its lease (0 s) has run out by the next reservation.
    assert await seeded(redis_state, [(a, 0, 0.7, 1.0)], g, "dead", lease_s=0.0) is None
    assert await seeded(redis_state, [(a, 0, 0.3, 1.0)], g, "live") is None
    assert await redis_state.usage(a, 0) == (0.0, pytest.approx(0.3))
    # The dead replica's settlement, had it come late, charges what was used, frees nothing more.
    await redis_state.settle(redis_state.cells([(a, 0)]), "dead", [0.7], [0.2])
    assert await redis_state.usage(a, 0) == (pytest.approx(0.2), pytest.approx(0.3))
    await redis_state.settle(redis_state.cells([(a, 0)]), "live", [0.3], [0.3])
    assert await redis_state.usage(a, 0) == (pytest.approx(0.5), pytest.approx(0.0, abs=1e-9))


async def test_a_lasting_hold_is_never_freed(redis_state: RedisState) -> None:
    a = key()
    g = await redis_state.generation()
    assert await seeded(redis_state, [(a, 0, 0.6, 1.0)], g, "job", lease_s=float("inf")) is None
    assert await seeded(redis_state, [(a, 0, 0.6, 1.0)], g, "call", lease_s=0.0) == 0
    assert await redis_state.usage(a, 0) == (0.0, pytest.approx(0.6))
