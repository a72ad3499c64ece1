"""Rollups per principal, model and hour: exact at any moment, whoever wrote the entries."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from governd.ledger import Storage, migrate
from governd.ledger.chain import ZERO, canonical, leaf_hash, link
from governd.ledger.entries import FIELDS_V1, LedgerEntry
from tests.ledger.test_storage import BASE

ENTRIES = [
    replace(BASE, id="a1", ts=7200.0 + 10, principal="acme/t/p", cost_usd=0.5),
    replace(
        BASE, id="a2", ts=7200.0 + 20, principal="acme/t/p", status=502, error_code="upstream_error"
    ),
    replace(
        BASE, id="a3", ts=10800.0 + 5, principal="acme/t/p", served_model="other", cost_usd=0.25
    ),
    replace(BASE, id="b1", ts=7200.0 + 30, principal="acme/t"),
    replace(
        BASE, id="c1", ts=7200.0 + 40, kind="control", operation="budget_set", principal="acme/t"
    ),
]


def append_v1(engine: sa.Engine, batch: list[LedgerEntry]) -> None:
    """What a 0002-era governd wrote: the v1 columns, chained, nothing else."""
    with engine.begin() as conn:
        head = conn.execute(
            sa.text("SELECT chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1")
        ).scalar()
        previous = bytes.fromhex(head) if head else ZERO
        for entry in batch:
            values = entry.as_tuple()[: len(FIELDS_V1)]
            previous = link(previous, leaf_hash(canonical(values)))
            row = dict(zip(FIELDS_V1, values, strict=True)) | {"chain_hash": previous.hex()}
            conn.execute(
                sa.text(
                    f"INSERT INTO ledger_entries ({', '.join(row)}) "
                    f"VALUES ({', '.join(':' + k for k in row)})"
                ),
                row,
            )


def totals(rows: list[dict[str, object]]) -> dict[str, tuple[object, ...]]:
    return {
        str(r["principal"]): (
            r["requests"],
            r["errors"],
            r["input_tokens"],
            r["output_tokens"],
            round(float(str(r["cost_usd"])), 9),
        )
        for r in rows
    }


EXPECTED = {
    "acme/t": (1, 0, BASE.input_tokens, BASE.output_tokens, BASE.cost_usd),
    "acme/t/p": (
        3,
        1,
        3 * BASE.input_tokens,
        3 * BASE.output_tokens,
        round(0.5 + BASE.cost_usd + 0.25, 9),
    ),
}


def test_summaries_are_exact_before_and_after_folding(storage_url: str) -> None:
    storage = Storage(storage_url)
    storage.append(ENTRIES[:3])
    assert storage.roll_up() == 3
    storage.append(ENTRIES[3:])  # not folded yet: read from the tail
    assert totals(storage.summary()) == EXPECTED
    assert storage.roll_up() == 2
    assert totals(storage.summary()) == EXPECTED
    assert storage.roll_up() == 0


def test_hours_and_subtrees(storage_url: str) -> None:
    storage = Storage(storage_url)
    storage.append(ENTRIES)
    storage.roll_up()
    hours = {
        (r["principal"], r["hour"]): r["requests"]
        for r in storage.summary(principal="acme/t/p", by_hour=True)
    }
    assert hours == {("acme/t/p", 7200): 2, ("acme/t/p", 10800): 1}
    assert [r["principal"] for r in storage.summary(since=7201.0)] == [
        "acme/t/p"
    ]  # whole hours from 10800


def test_entries_from_an_older_replica_are_counted(storage_url: str) -> None:
    """A replica still on the previous version inserts as it always did; the rollups still count it."""
    storage = Storage(storage_url)
    append_v1(storage.engine, ENTRIES[:2])  # the 0002-era write path: no rollup logic at all
    storage.append(ENTRIES[2:4])
    storage.roll_up()
    assert totals(storage.summary()) == EXPECTED


def test_migration_folds_existing_entries(storage_url: str) -> None:
    engine = sa.create_engine(storage_url)
    migrate.upgrade(engine, "0002")
    append_v1(engine, ENTRIES)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        folded = conn.execute(sa.text("SELECT SUM(requests) FROM rollups")).scalar()
    assert folded == 4
    assert totals(Storage(storage_url).summary()) == EXPECTED
