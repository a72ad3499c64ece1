"""The writer: batches off the loop, nothing lost, survives a failing store."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path

from governd.ledger import LedgerWriter, Storage
from tests.ledger.test_storage import BASE


def test_everything_appended_is_stored_after_flush_and_close(storage_url: str) -> None:
    storage = Storage(storage_url)
    writer = LedgerWriter(storage, flush_ms=20)
    writer.start()
    for i in range(5000):
        writer.append(replace(BASE, id=f"req_{i}"))
    assert writer.flush()
    assert storage.count() == 5000 and writer.lag == 0
    writer.append(replace(BASE, id="last"))
    writer.close()
    assert storage.count() == 5001


class Flaky(Storage):
    """A store that fails its first ``n`` writes."""

    def __init__(self, url: str, n: int) -> None:
        super().__init__(url)
        self.failures = n

    def append(self, batch):  # type: ignore[no-untyped-def]
        if self.failures:
            self.failures -= 1
            raise OSError("disk unavailable")
        super().append(batch)


def test_failed_batches_are_retried_not_dropped(storage_url: str) -> None:
    storage = Flaky(storage_url, n=2)
    writer = LedgerWriter(storage, flush_ms=1)
    writer.start()
    for i in range(10):
        writer.append(replace(BASE, id=f"req_{i}"))
    assert writer.flush(timeout=30)
    writer.close()
    assert storage.count() == 10


class Gated(Storage):
    """A store whose writes wait until the test opens the gate."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.gate = threading.Event()

    def append(self, batch):  # type: ignore[no-untyped-def]
        self.gate.wait()
        super().append(batch)


async def test_a_full_queue_makes_callers_wait_instead_of_dropping(tmp_path: Path) -> None:
    storage = Gated(f"sqlite:///{tmp_path / 'w.db'}")
    writer = LedgerWriter(storage, flush_ms=1, max_pending=5)
    writer.start()
    waits = [writer.append(replace(BASE, id=f"req_{i}")) for i in range(8)]
    assert waits[:4] == [None] * 4  # below the limit: no waiting
    pending = [w for w in waits if w is not None]
    assert len(pending) == 4 and not any(w.done() for w in pending)
    storage.gate.set()
    await asyncio.wait_for(asyncio.gather(*pending), timeout=30)
    assert writer.flush()
    writer.close()
    assert storage.count() == 8


def test_the_writer_folds_what_it_stores_into_the_rollups(storage_url: str) -> None:
    """A summary after traffic reads the rollups, not the whole ledger entry by entry."""
    storage = Storage(storage_url)
    writer = LedgerWriter(storage, flush_ms=5)
    writer.start()
    for i in range(3000):
        writer.append(replace(BASE, id=f"req_{i}", principal=f"acme/t{i % 3}"))
    assert writer.flush()
    deadline = time.monotonic() + 30
    while storage.unrolled():  # folded about once a second while the writer runs
        assert time.monotonic() < deadline, f"{storage.unrolled()} entries never folded"
        time.sleep(0.05)
    assert [r["requests"] for r in storage.summary()] == [1000, 1000, 1000]
    writer.append(replace(BASE, id="last", principal="acme/t0"))
    writer.close()  # and once more on the way out
    assert storage.unrolled() == 0
    assert [r["requests"] for r in storage.summary()] == [1001, 1000, 1000]
