"""Reservations: all or none, settled once, never past a limit, whatever the interleaving."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governd.actions import Principal
from governd.clock import ManualClock
from governd.errors import BudgetExceeded
from governd.governance.budgets import BudgetKey, Budgets, Cost, Limit, nodes_of
from governd.governance.state.local_budgets import LocalState
from governd.testing.budgets import MemoryBudgetSource

WHO = Principal("acme", "t", "p", "key_1")


def book(clock: ManualClock | None = None, **limits: float) -> Budgets:
    b = Budgets(LocalState(), ZoneInfo("UTC"), clock or ManualClock())
    for node, limit in limits.items():
        b.set(BudgetKey(node.replace("__", "/"), "usd", "day"), Limit(limit))
    return b


def test_nodes_of_the_path() -> None:
    assert nodes_of(WHO) == ["acme", "acme/t", "acme/t/p", "acme/t/p/key_1"]
    assert nodes_of(Principal("acme", "t")) == ["acme", "acme/t"]


async def test_all_or_none_and_the_refusal_names_the_budget() -> None:
    b = book(acme=10.0, acme__t=1.0)
    await b.reserve(WHO, Cost(0.6, 0))
    with pytest.raises(BudgetExceeded) as info:
        await b.reserve(WHO, Cost(0.6, 0))
    assert info.value.budget == "acme/t usd/day"
    assert info.value.retry_after is not None and info.value.retry_after > 0
    # The refused request held nothing on the org either.
    assert await b.state.usage(
        BudgetKey("acme", "usd", "day"), b.window(BudgetKey("acme", "usd", "day"))[0]
    ) == (0.0, 0.6)


async def test_settle_charges_actual_and_releases_the_rest_once() -> None:
    b = book(acme__t=1.0)
    key = BudgetKey("acme/t", "usd", "day")
    hold = await b.reserve(WHO, Cost(0.8, 0))
    await b.settle(hold, Cost(0.3, 0))
    await b.settle(hold, Cost(0.3, 0))
    assert await b.state.usage(key, b.window(key)[0]) == (0.3, 0.0)
    await b.reserve(WHO, Cost(0.7, 0))  # 0.3 spent + 0.7 fits exactly


async def test_a_new_period_starts_empty() -> None:
    clock = ManualClock()
    b = book(clock, acme=1.0)
    hold = await b.reserve(WHO, Cost(1.0, 0))
    await b.settle(hold, Cost(1.0, 0))
    with pytest.raises(BudgetExceeded):
        await b.reserve(WHO, Cost(0.01, 0))
    clock.advance(86_400)
    await b.reserve(WHO, Cost(1.0, 0))


async def test_each_period_rolls_over_on_its_own() -> None:
    clock = ManualClock()
    b = Budgets(LocalState(), ZoneInfo("UTC"), clock)
    b.set(BudgetKey("acme", "usd", "hour"), Limit(1.0))
    b.set(BudgetKey("acme", "usd", "day"), Limit(1.5))
    await b.settle(await b.reserve(WHO, Cost(1.0, 0)), Cost(1.0, 0))
    clock.advance(3_600)  # a new hour of the same day
    with pytest.raises(BudgetExceeded) as info:
        await b.reserve(WHO, Cost(0.6, 0))
    assert info.value.budget == "acme usd/day"
    await b.reserve(WHO, Cost(0.5, 0))


async def test_a_changed_limit_binds_the_next_reservation() -> None:
    b = book(acme=1.0)
    await b.reserve(WHO, Cost(0.5, 0))
    b.set(BudgetKey("acme", "usd", "day"), Limit(0.7))
    with pytest.raises(BudgetExceeded):
        await b.reserve(WHO, Cost(0.5, 0))
    b.set(BudgetKey("acme/t", "usd", "day"), Limit(0.1))  # a new budget on the path
    with pytest.raises(BudgetExceeded) as info:
        await b.reserve(WHO, Cost(0.15, 0))
    assert info.value.budget == "acme/t usd/day"


async def test_tokens_budget_counts_tokens() -> None:
    b = Budgets(LocalState(), ZoneInfo("UTC"), ManualClock())
    b.set(BudgetKey("acme/t/p/key_1", "tokens", "hour"), Limit(100))
    await b.reserve(WHO, Cost(99.0, 60))
    with pytest.raises(BudgetExceeded, match="tokens"):
        await b.reserve(WHO, Cost(0.0, 41))


async def test_device_hours_budget_counts_device_hours_and_names_them() -> None:
    b = Budgets(LocalState(), ZoneInfo("UTC"), ManualClock())
    b.set(BudgetKey("acme/t/p", "device_hours", "day"), Limit(2.0))
    hold = await b.reserve(WHO, Cost(100.0, 10**6, 1.5))  # USD and tokens have no budget here
    with pytest.raises(BudgetExceeded, match=r"device_hours/day exceeded.*0\.6000 device-hours"):
        await b.reserve(WHO, Cost(0.0, 0, 0.6))
    await b.settle(hold, Cost(0.0, 0, 0.25))
    await b.reserve(WHO, Cost(0.0, 0, 1.75))  # 0.25 spent + 1.75 fits exactly


@pytest.mark.parametrize(
    ("node", "figures"),
    [("acme", False), ("acme/t", False), ("acme/t/p", True), ("acme/t/p/key_1", True)],
)
async def test_a_refusal_shows_spend_only_of_the_callers_own_subtree(
    node: str, figures: bool
) -> None:
    b = Budgets(LocalState(), ZoneInfo("UTC"), ManualClock(start=3600))
    b.set(BudgetKey(node, "usd", "day"), Limit(10.0))
    await b.settle(await b.reserve(WHO, Cost(7.0, 0)), Cost(7.0, 0))
    with pytest.raises(BudgetExceeded) as info:
        await b.reserve(WHO, Cost(4.0, 0))
    assert ("spent $7.0000" in str(info.value)) is figures
    assert f"budget {node} usd/day" in str(info.value)


async def test_retry_after_is_seconds_when_holds_in_flight_fill_the_budget() -> None:
    b = Budgets(LocalState(), ZoneInfo("UTC"), ManualClock(start=3600))
    b.set(BudgetKey("acme/t/p", "usd", "day"), Limit(10.0))
    hold = await b.reserve(WHO, Cost(8.0, 0))  # in flight: most of it comes back when it settles
    with pytest.raises(BudgetExceeded) as held:
        await b.reserve(WHO, Cost(4.0, 0))
    assert held.value.retry_after == 1.0
    await b.settle(hold, Cost(8.0, 0))  # spent now: room only in tomorrow's window
    with pytest.raises(BudgetExceeded) as spent:
        await b.reserve(WHO, Cost(4.0, 0))
    assert spent.value.retry_after == 86400 - 3600


@settings(max_examples=200, deadline=None)
@given(
    limit=st.floats(0.0, 5.0),
    calls=st.lists(
        st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 3)),
        min_size=1,
        max_size=40,
    ),
)
def test_spend_never_exceeds_the_limit_under_any_interleaving(
    limit: float, calls: list[tuple[float, float, int]]
) -> None:
    """Bound b, actual a <= b, settled after d yields: spent stays within the limit."""

    async def run() -> None:
        b = book(acme__t=limit)
        key = BudgetKey("acme/t", "usd", "day")
        start = b.window(key)[0]

        async def call(bound: float, fraction: float, delay: int) -> None:
            try:
                hold = await b.reserve(WHO, Cost(bound, 0))
            except BudgetExceeded:
                return
            for _ in range(delay):
                await asyncio.sleep(0)
                spent, reserved = await b.state.usage(key, start)
                assert spent + reserved <= limit + 1e-9
            await b.settle(hold, Cost(bound * fraction, 0))

        await asyncio.gather(*(call(*c) for c in calls))
        spent, reserved = await b.state.usage(key, start)
        assert spent <= limit + 1e-9 and reserved == pytest.approx(0.0, abs=1e-9)

    asyncio.run(run())


async def test_a_change_through_one_replica_binds_the_others_at_once() -> None:
    """Replicas share state and source: B enforces A's change on its very next reservation."""
    state, source, clock = LocalState(), MemoryBudgetSource(), ManualClock()
    key = BudgetKey("acme/t", "usd", "day")
    source.spent[key] = 0.75  # recorded before the budget existed
    a, b = (Budgets(state, ZoneInfo("UTC"), clock, source) for _ in range(2))
    await a.sync()
    await b.sync()
    await b.reserve(WHO, Cost(5.0, 0))  # no budget yet
    assert await a.change(key, Limit(1.0)) is None
    with pytest.raises(BudgetExceeded, match="acme/t usd/day"):
        await b.reserve(WHO, Cost(0.5, 0))  # 0.75 recorded + 0.5 > 1.0
    await b.reserve(WHO, Cost(0.25, 0))
    assert b.limit(key) == Limit(1.0) and b.all() == [key]
    assert await b.change(key, Limit(2.0)) == Limit(1.0)
    await a.reserve(WHO, Cost(1.0, 0))
    assert a.limit(key) == Limit(2.0)


async def test_redis_losing_its_memory_resets_no_budget(redis_url: str) -> None:
    """Redis restarted without persistence: each window is seeded from the ledger again."""
    from redis.asyncio import Redis

    from governd.governance.state.redis_budgets import RedisState

    source, clock = MemoryBudgetSource(), ManualClock(start=3600)
    key = BudgetKey("acme/t/p", "usd", "day")
    source.saved[key] = Limit(10.0)
    budgets = Budgets(RedisState(redis_url), ZoneInfo("UTC"), clock, source)
    await budgets.sync()
    await budgets.settle(await budgets.reserve(WHO, Cost(6.0, 0)), Cost(6.0, 0))
    source.spent[key] = 6.0  # what the ledger recorded
    raw = Redis.from_url(redis_url)
    await raw.flushall()
    await raw.aclose()
    with pytest.raises(BudgetExceeded, match=r"spent \$6\.0000"):
        await budgets.reserve(WHO, Cost(5.0, 0))
    await budgets.reserve(WHO, Cost(4.0, 0))  # 6 + 4: exactly full
    await budgets.state.aclose()


async def test_a_charge_made_while_redis_is_down_is_owed_not_lost(tmp_path: Path) -> None:
    from governd.governance.state.redis_budgets import RedisState
    from governd.server.launcher import free_port
    from governd.testing.redis import redis_server

    source, clock, port = MemoryBudgetSource(), ManualClock(start=3600), free_port()
    key = BudgetKey("acme/t/p", "usd", "day")
    source.saved[key] = Limit(10.0)
    with redis_server(tmp_path, port) as url:
        budgets = Budgets(RedisState(url), ZoneInfo("UTC"), clock, source)
        await budgets.sync()
        hold = await budgets.reserve(WHO, Cost(6.0, 0))
    await budgets.settle(hold, Cost(6.0, 0))  # Redis is down: owed, and the reply still ends
    with redis_server(tmp_path, port):  # back, with nothing in memory; the ledger has no entry
        with pytest.raises(BudgetExceeded):
            await budgets.reserve(WHO, Cost(5.0, 0))  # the 6 owed were paid first
        await budgets.reserve(WHO, Cost(4.0, 0))
        await budgets.state.aclose()


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
async def test_a_named_hold_is_held_once_however_often_it_is_taken(
    shared: bool, request: pytest.FixtureRequest
) -> None:
    """A job's hold, taken again by a replica adopting the job, is not held twice; settled, it
    is gone, and taking the name again holds anew."""
    from governd.governance.state.redis_budgets import RedisState

    source = MemoryBudgetSource()
    key = BudgetKey("acme/t", "usd", "day")
    source.saved[key] = Limit(10.0)
    state = RedisState(request.getfixturevalue("redis_url")) if shared else LocalState()
    if shared:  # other tests' windows of the same day and node
        from redis.asyncio import Redis

        raw = Redis.from_url(request.getfixturevalue("redis_url"))
        await raw.flushall()
        await raw.aclose()
    budgets = Budgets(state, ZoneInfo("UTC"), ManualClock(start=3600), source)
    await budgets.sync()
    name = f"job:{request.node.name}"
    first = await budgets.reserve(WHO, Cost(4.0, 0), name=name)
    again = await budgets.reserve(WHO, Cost(4.0, 0), name=name)
    start = budgets.window(key)[0]
    assert await budgets.state.usage(key, start) == (0.0, 4.0)
    await budgets.settle(again, Cost(1.0, 0))
    await budgets.settle(first, Cost(1.0, 0))  # its twin settled it: nothing held to release
    assert (await budgets.state.usage(key, start))[1] == pytest.approx(0.0)
    await budgets.reserve(WHO, Cost(4.0, 0), name=name)
    assert (await budgets.state.usage(key, start))[1] == pytest.approx(4.0)
    await budgets.state.aclose()
