"""Chained appends and signed checkpoints, under one write lock per database.

Every batch reads the chain head and inserts its entries inside one
transaction that holds the ledger's write lock (``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL), so writers in
several processes extend one chain and never fork it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governd.ledger.chain import ZERO, Frontier, canonical, canonical_entry, leaf_hash, link
from governd.ledger.entries import FIELDS, LedgerEntry
from governd.ledger.signing import Signer, checkpoint_message

_LOCK_ID = 0x676F7665726E64  # "governd"


@contextmanager
def locked(engine: Engine) -> Iterator[Any]:
    """A DBAPI cursor inside a transaction holding the ledger's write lock."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        else:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        yield cur
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()


@contextmanager
def locked_connection(engine: Engine) -> Iterator[sa.Connection]:
    """A SQLAlchemy connection in a transaction holding the ledger's write lock."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.begin()
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
        try:
            yield conn
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def _mark(engine: Engine) -> str:
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"


def append_chained(engine: Engine, batch: Sequence[LedgerEntry]) -> None:
    """Insert ``batch`` after the current chain head."""
    columns = (*FIELDS, "chain_hash")
    sql = f"INSERT INTO ledger_entries ({', '.join(columns)}) VALUES ({', '.join([_mark(engine)] * len(columns))})"
    with locked(engine) as cur:
        cur.execute("SELECT chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1")
        row = cur.fetchone()
        previous = bytes.fromhex(row[0]) if row and row[0] else ZERO
        rows = []
        for entry in batch:
            previous = link(previous, leaf_hash(canonical_entry(entry)))
            rows.append((*entry.as_tuple(), previous.hex()))
        cur.executemany(sql, rows)


def make_checkpoint(engine: Engine, signer: Signer, now: float) -> dict[str, Any] | None:
    """Sign a Merkle tree head over every entry so far, if any came since the last checkpoint."""
    m = _mark(engine)
    with locked(engine) as cur:
        cur.execute("SELECT size, frontier FROM checkpoints ORDER BY size DESC LIMIT 1")
        last = cur.fetchone()
        frontier = Frontier.load(last[1] if last else None)
        cur.execute(
            f"SELECT {', '.join(FIELDS)}, chain_hash FROM ledger_entries ORDER BY seq "
            f"LIMIT -1 OFFSET {m}"
            if engine.dialect.name == "sqlite"
            else f"SELECT {', '.join(FIELDS)}, chain_hash FROM ledger_entries ORDER BY seq OFFSET {m}",
            (frontier.size,),
        )
        head = None
        for row in cur.fetchall():
            frontier.append(leaf_hash(canonical(row[:-1])))
            head = row[-1]
        if head is None:
            return None
        root = frontier.root().hex()
        signature = signer.sign(checkpoint_message(frontier.size, root, head, now))
        cur.execute(
            f"INSERT INTO signing_keys (key_id, public_key, first_used) SELECT {m}, {m}, {m} "
            f"WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE key_id = {m})",
            (signer.key_id, signer.public_hex, now, signer.key_id),
        )
        checkpoint = {
            "size": frontier.size,
            "root": root,
            "chain_head": head,
            "ts": now,
            "key_id": signer.key_id,
            "signature": signature,
            "frontier": frontier.dump(),
        }
        cur.execute(
            f"INSERT INTO checkpoints (size, root, chain_head, ts, key_id, signature, frontier) "
            f"VALUES ({', '.join([m] * 7)})",
            tuple(checkpoint.values()),
        )
        return checkpoint
