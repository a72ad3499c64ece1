"""Ledger appends per second: batched and strict durability, on SQLite and PostgreSQL.

Usage: python bench/ledger.py [--entries 40000] [--strict-entries 6000] [--writers 64]
                              [--summary-sizes 10000,100000,1000000]

Batched: one producer appends as fast as it can; the time is until everything
is stored (and the SQLite file's bytes per entry are reported). Strict: ``--writers`` concurrent callers each append and wait for
durability before appending again, as requests do (group commit makes them
share fsyncs). Every append is chained and checkpoints are signed every 1,000
entries. PostgreSQL runs with fsync off (a throwaway cluster), so its strict
figure measures the protocol, not a disk. A summary (``/admin/v1/ledger/summary``)
is timed at each of ``--summary-sizes`` entries on SQLite, as the writer leaves it
(rollups folded) and as it was before the writer folded them (every entry read).
Prints tables and exits 0.
Targets on SQLite: >= 20,000/s batched, >= 3,000/s strict.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import sqlalchemy as sa

from governd.ledger import LedgerEntry, LedgerWriter, Storage
from governd.ledger.signing import Signer
from governd.testing.postgres import postgres_cluster

ENTRY = LedgerEntry(
    id="",
    ts=0.0,
    kind="model_call",
    operation="chat",
    principal="acme/research/agents",
    key_id="key_1",
    run_id="run-1",
    model="gpt-4o-mini",
    served_model="gpt-4o-mini",
    deployment="sim-a/sim-small",
    decision="allow",
    reasons="",
    status=200,
    error_code=None,
    stream=True,
    attempts=1,
    latency_ms=123.4,
    ttft_ms=12.3,
    input_tokens=812,
    cached_tokens=512,
    output_tokens=64,
    usage_source="upstream",
    cost_usd=0.000123,
)


PRINCIPALS = ("acme/research/agents", "acme/research/evals", "acme/support/chatbot")


async def batched(url: str, signer: Signer, n: int) -> float:
    writer = LedgerWriter(Storage(url), flush_ms=50, signer=signer)
    writer.start()
    start = time.perf_counter()
    for i in range(n):
        room = writer.append(
            replace(
                ENTRY,
                id=f"req_{i:022x}",
                ts=float(i),
                principal=PRINCIPALS[i % 3],
                key_id=f"key_{i % 3:022x}",
            )
        )
        if room is not None:  # past max_pending: wait, as a request would
            await room
    assert writer.flush(timeout=600)
    elapsed = time.perf_counter() - start
    writer.close()
    return n / elapsed


def strict(url: str, signer: Signer, n: int, writers: int) -> float:
    writer = LedgerWriter(Storage(url, durable=True), flush_ms=50, signer=signer, strict=True)
    writer.start()

    async def caller(w: int) -> None:
        for i in range(n // writers):
            durable = writer.append(replace(ENTRY, id=f"s{w}_{i}", ts=float(i)))
            assert durable is not None
            await durable

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(caller(w) for w in range(writers)))
        return (n // writers * writers) / (time.perf_counter() - start)

    rate = asyncio.run(run())
    writer.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=40_000)
    parser.add_argument("--strict-entries", type=int, default=6_000)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--summary-sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, postgres_cluster() as pg:
        signer = Signer.load(Path(tmp) / "key.pem", create=True)
        for backend, url_of in (
            ("sqlite", lambda name: f"sqlite:///{Path(tmp) / name}.db"),
            ("postgresql", lambda name: pg.new_database()),
        ):
            b = asyncio.run(batched(url_of("batched"), signer, args.entries))
            s = strict(url_of("strict"), signer, args.strict_entries, args.writers)
            rows.append((backend, b, s))
        size = bytes_per_entry(Path(tmp) / "batched.db", args.entries)
        # The batched run's SQLite ledger holds args.entries: one more checkpoint there,
        # against one over a fresh ledger, shows whether its cost grows with the ledger.
        small = checkpoint_ms(f"sqlite:///{Path(tmp) / 'small'}.db", signer, 0)
        large = checkpoint_ms(f"sqlite:///{Path(tmp) / 'batched'}.db", signer, args.entries)
    print(
        f"| backend | batched appends/s ({args.entries:,}) | strict appends/s ({args.strict_entries:,}, {args.writers} callers) |"
    )
    print("|---|--:|--:|")
    for backend, b, s in rows:
        print(f"| {backend} | {b:,.0f} | {s:,.0f} |")
    print(f"\nSQLite file per entry (batched run, indexes included, vacuumed): {size:,.0f} bytes")
    print(
        f"Signing a checkpoint over 1,000 new entries (SQLite): {small:.1f} ms on an empty "
        f"ledger, {large:.1f} ms after {args.entries:,}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [int(n) for n in args.summary_sizes.split(",") if n]
        summaries = summary_ms(f"sqlite:///{Path(tmp) / 'summary'}.db", sizes)
    print(
        "\n| entries | summary, rollups folded (ms) | entries read | never folded (ms) | entries read |"
    )
    print("|--:|--:|--:|--:|--:|")
    for n, folded, tail, unfolded in summaries:
        print(f"| {n:,} | {folded:.1f} | {tail:,} | {unfolded:.1f} | {n:,} |")


def summary_ms(url: str, sizes: list[int]) -> list[tuple[int, float, int, float]]:
    """Per size: a summary's ms with rollups as the writer leaves them, the entries it read one
    by one, and its ms with nothing folded (as before the writer folded rollups)."""
    storage = Storage(url)
    out, have = [], 0
    for size in sizes:
        while have < size:
            batch = min(2048, size - have)
            storage.append(
                [
                    replace(
                        ENTRY, id=f"sum-{have + i}", ts=float(have + i), principal=PRINCIPALS[i % 3]
                    )
                    for i in range(batch)
                ]
            )
            have += batch
        storage.roll_up()
        storage.append([replace(ENTRY, id=f"tail-{size}-{i}", ts=float(size)) for i in range(100)])
        have += 100  # a second's worth of traffic not folded yet
        folded, tail = _timed(storage.summary), storage.unrolled()
        with storage.engine.begin() as conn:  # forget the rollups: every entry is then read
            conn.execute(sa.text("DELETE FROM rollups"))
            conn.execute(sa.text("DELETE FROM ledger_meta WHERE key = 'rollup_seq'"))
        unfolded = _timed(storage.summary)
        storage.roll_up()
        out.append((have, folded, tail, unfolded))
    storage.close()
    return out


def _timed(fn: object) -> float:
    assert callable(fn)
    began = time.perf_counter()
    fn()
    return (time.perf_counter() - began) * 1000


def checkpoint_ms(url: str, signer: Signer, start: int) -> float:
    """Milliseconds to checkpoint 1,000 entries appended after ``start`` earlier ones."""
    storage = Storage(url)
    storage.append([replace(ENTRY, id=f"ck-{start + i}", ts=float(i)) for i in range(1000)])
    began = time.perf_counter()
    storage.checkpoint(signer, time.time())
    took = (time.perf_counter() - began) * 1000
    storage.close()
    return took


def bytes_per_entry(db: Path, n: int) -> float:
    """The SQLite file's size per entry once the WAL is folded in and free pages dropped."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    return db.stat().st_size / n


if __name__ == "__main__":
    main()
