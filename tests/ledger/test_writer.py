"""The writer: batches off the loop, nothing lost, survives a failing store."""

from __future__ import annotations

from dataclasses import replace

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
