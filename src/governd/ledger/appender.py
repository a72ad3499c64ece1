"""Chained appends and signed checkpoints, under one write lock per database.

Every batch reads the chain head and inserts its entries inside one
transaction that holds the ledger's write lock (``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL), so writers in
several processes extend one chain and never fork it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from governd.ledger.chain import ZERO, Frontier, canonical, canonical_entry, leaf_hash, link
from governd.ledger.entries import FIELDS, LedgerEntry
from governd.ledger.names import COLUMNS, NameIds
from governd.ledger.signing import Signer, checkpoint_message

_LOCK_ID = 0x676F7665726E64  # "governd"
log = logging.getLogger("governd.ledger")


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


def append_chained(engine: Engine, batch: Sequence[LedgerEntry], names: NameIds) -> None:
    """Insert ``batch`` after the current chain head, its names by reference."""
    m = _mark(engine)
    sql = f"INSERT INTO ledger_entries ({', '.join(COLUMNS)}) VALUES ({', '.join([m] * len(COLUMNS))})"
    with locked(engine) as cur:
        cur.execute("SELECT chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1")
        row = cur.fetchone()
        previous = bytes.fromhex(row[0]) if row and row[0] else ZERO
        hashes = []
        for entry in batch:  # hashed over names, as every reader sees the entry
            previous = link(previous, leaf_hash(canonical_entry(entry)))
            hashes.append(previous.hex())
        rows, new = names.rows(cur, m, batch, hashes)
        cur.executemany(sql, rows)
    names.remember(new)


def make_checkpoint(engine: Engine, signer: Signer, now: float) -> dict[str, Any] | None:
    """Sign a Merkle tree head over the entries so far, if any came since the last checkpoint.

    Only entries whose chain link this code can re-derive are signed: a row it
    cannot (edited, or written by a newer governd with a field this one does
    not know) stops the checkpoint there, so no replica ever signs a head that
    an audit would reject. A newer replica signs past it.
    """
    m = _mark(engine)
    with locked(engine) as cur:
        cur.execute(
            "SELECT size, frontier, chain_head, head_seq FROM checkpoints "
            "ORDER BY size DESC LIMIT 1"
        )
        last = cur.fetchone()
        frontier = Frontier.load(last[1] if last else None)
        rows = _since(cur, m, engine.dialect.name, last)
        previous = ZERO
        if frontier.size:
            if not rows:  # truncated below its last checkpoint: an audit reports it
                return None
            previous, rows = bytes.fromhex(rows[0][-1]), rows[1:]
        head = None
        head_seq = None
        for row in rows:
            leaf = leaf_hash(canonical(row[1:-1]))
            previous = link(previous, leaf)
            if previous.hex() != row[-1]:
                log.warning(
                    "not checkpointing past entry %s: its chain link does not re-derive", row[1]
                )
                break
            frontier.append(leaf)
            head, head_seq = row[-1], row[0]
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
            "INSERT INTO checkpoints "
            "(size, root, chain_head, ts, key_id, signature, frontier, head_seq) "
            f"VALUES ({', '.join([m] * 8)})",
            (*checkpoint.values(), head_seq),
        )
        return checkpoint


def _since(cur: Any, m: str, dialect: str, last: Any) -> list[Any]:
    """Rows (seq, fields, chain hash) from the last checkpointed entry on; all rows if none.

    The entry is found by its ``seq`` through the primary key, so a checkpoint
    reads only what is new however long the ledger; a checkpoint from before
    ``head_seq`` was kept, or one whose row is not where it says, is found by
    position instead (a scan).
    """
    select = f"SELECT seq, {', '.join(FIELDS)}, chain_hash FROM ledger_entries_named"
    if last is not None and last[3] is not None:
        cur.execute(f"{select} WHERE seq >= {m} ORDER BY seq", (last[3],))
        rows: list[Any] = cur.fetchall()
        if rows and rows[0][-1] == last[2]:
            return rows
    offset = max(int(last[0]) - 1, 0) if last is not None else 0
    limit = "LIMIT -1 " if dialect == "sqlite" else ""
    cur.execute(f"{select} ORDER BY seq {limit}OFFSET {m}", (offset,))
    return list(cur.fetchall())
