"""Storage on SQLite and PostgreSQL: entries round-trip, filters, scoping, paging, summaries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from governd.ledger import LedgerEntry, Storage

BASE = LedgerEntry(
    id="req_0",
    ts=1000.0,
    kind="model_call",
    operation="chat",
    principal="acme/t/p",
    key_id="key_1",
    run_id=None,
    model="m",
    served_model="m",
    deployment="u/m",
    decision="allow",
    reasons="",
    status=200,
    error_code=None,
    stream=False,
    attempts=1,
    latency_ms=12.5,
    ttft_ms=3.0,
    input_tokens=10,
    cached_tokens=4,
    output_tokens=5,
    usage_source="upstream",
    cost_usd=0.001,
)


@pytest.fixture
def storage(storage_url: str) -> Storage:
    s = Storage(storage_url)
    s.append(
        [
            BASE,
            replace(BASE, id="req_1", ts=1001.0, principal="acme/t", run_id="r1"),
            replace(
                BASE,
                id="req_2",
                ts=1002.0,
                principal="acme/t2",
                status=429,
                error_code="x",
                decision="deny",
            ),
            replace(BASE, id="req_3", ts=1003.0, principal="acme/t/p", run_id="r1", model="other"),
            replace(BASE, id="req_4", ts=1004.0, principal="acme/tx"),
        ]
    )
    return s


def test_round_trip(storage: Storage) -> None:
    row = storage.query(entry_id="req_0")[0]
    assert {k: row[k] for k in BASE.as_dict()} == BASE.as_dict()


@pytest.mark.parametrize(
    ("filters", "ids"),
    [
        ({"principal": "acme/t"}, ["req_0", "req_1", "req_3"]),
        ({"principal": "acme/t/p"}, ["req_0", "req_3"]),
        ({"principal": "acme"}, ["req_0", "req_1", "req_2", "req_3", "req_4"]),
        ({"run": "r1"}, ["req_1", "req_3"]),
        ({"model": "other"}, ["req_3"]),
        ({"decision": "deny"}, ["req_2"]),
        ({"since": 1003.0}, ["req_3", "req_4"]),
    ],
    ids=["subtree", "leaf", "org", "run", "model", "decision", "since"],
)
def test_filters(storage: Storage, filters: dict[str, object], ids: list[str]) -> None:
    assert [r["id"] for r in storage.query(**filters)] == ids  # type: ignore[arg-type]


def test_paging_both_ways(storage: Storage) -> None:
    first = storage.query(limit=2)
    rest = storage.query(after=first[-1]["seq"], limit=10)
    assert [r["id"] for r in first + rest] == [f"req_{i}" for i in range(5)]
    newest = storage.query(limit=2, newest_first=True)
    older = storage.query(after=newest[-1]["seq"], limit=10, newest_first=True)
    assert [r["id"] for r in newest + older] == [f"req_{i}" for i in reversed(range(5))]


def test_summary_per_principal(storage: Storage) -> None:
    rows = {r["principal"]: r for r in storage.summary(principal="acme/t")}
    assert set(rows) == {"acme/t", "acme/t/p"}
    assert rows["acme/t/p"]["requests"] == 2 and rows["acme/t/p"]["input_tokens"] == 20
    errors = {r["principal"]: r["errors"] for r in storage.summary()}
    assert errors["acme/t2"] == 1 and errors["acme/t"] == 0


def test_like_wildcards_in_principal_are_literal(storage: Storage) -> None:
    assert storage.query(principal="acme/t%") == []


def test_sqlite_creates_the_folder_of_its_file(tmp_path: Path) -> None:
    Storage(f"sqlite:///{tmp_path / 'deep' / 'er' / 'l.db'}").append([BASE])
    assert (tmp_path / "deep" / "er" / "l.db").exists()


def test_entries_refer_to_names_once_and_older_rows_read_alike(storage_url: str) -> None:
    """New rows carry ids, not names; a row with names inline (an older replica's) reads the same."""
    import sqlalchemy as sa

    from governd.ledger.audit import verify_ledger
    from governd.ledger.chain import canonical_entry, leaf_hash, link
    from governd.ledger.entries import FIELDS

    storage = Storage(storage_url)
    storage.append([replace(BASE, id=f"req_{i}", ts=1000.0 + i) for i in range(3)])
    old = replace(BASE, id="old", ts=2000.0)
    with storage.engine.begin() as conn:
        raw = conn.execute(
            sa.text(
                "SELECT principal, key_id, model, principal_ref, chain_hash FROM ledger_entries"
            )
        ).all()
        names = conn.execute(sa.text("SELECT kind, name FROM ledger_names")).all()
        # What a replica from before compact entries writes: names inline, no references.
        chained = link(bytes.fromhex(raw[-1][4]), leaf_hash(canonical_entry(old))).hex()
        conn.execute(
            sa.text(
                f"INSERT INTO ledger_entries ({', '.join(FIELDS)}, chain_hash) "
                f"VALUES ({', '.join(':' + f for f in FIELDS)}, :chain_hash)"
            ),
            {**old.as_dict(), "chain_hash": chained},
        )
    assert all(r[0] == "" and r[1] is None and r[2] is None and r[3] is not None for r in raw)
    assert sorted(tuple(n) for n in names) == [
        ("deployment", "u/m"),
        ("key", "key_1"),
        ("model", "m"),
        ("principal", "acme/t/p"),
    ]
    storage.append([replace(BASE, id="req_new", ts=3000.0)])  # chains after the old-style row
    rows = storage.query(principal="acme/t")
    assert [r["id"] for r in rows] == ["req_0", "req_1", "req_2", "old", "req_new"]
    assert {(r["principal"], r["key_id"], r["model"], r["deployment"]) for r in rows} == {
        ("acme/t/p", "key_1", "m", "u/m")
    }
    assert verify_ledger(storage.engine, {}).intact
    storage.close()
