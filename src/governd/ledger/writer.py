"""Appends entries off the event loop: the request path only enqueues.

When ``max_pending`` entries are queued and not yet stored (the store is slow
or down), ``append`` returns a future that resolves once the writer has
caught up: requests wait, entries are never dropped.

In ``strict`` durability, ``append`` returns a future that resolves once the
entry is committed with ``synchronous=FULL`` (fsynced): callers await it
before the response's last byte leaves. The writer then wakes for every
append, and whatever queued while it was writing forms the next batch (group
commit).


A writer thread drains the queue every ``flush_ms`` (or at once when someone
waits in ``flush``) and inserts batches of up to 2,048 entries, each in one
transaction. About once a second it folds new entries into the rollups, so a
summary reads at most a second's worth of unfolded entries. ``append`` never blocks and never
raises; a failed batch is kept and retried, so entries are not lost while the
store is briefly unavailable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Any

import orjson

from governd.ids import new_id
from governd.ledger.entries import LedgerEntry
from governd.ledger.signing import Signer
from governd.ledger.storage import Storage

log = logging.getLogger("governd.ledger")

_STOP = object()
_MAX_BATCH = 2048
_SAY_EVERY_S = 30.0


def _why(exc: Exception) -> str:
    """An error's first line, for a log line that stays one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class LedgerWriter:
    """Batches entries into ``storage`` from a background thread."""

    def __init__(
        self,
        storage: Storage,
        flush_ms: int,
        signer: Signer | None = None,
        checkpoint_every: int = 1000,
        checkpoint_s: float = 10.0,
        strict: bool = False,
        max_pending: int = 100_000,
    ) -> None:
        self._storage = storage
        self._strict = strict
        self._max_pending = max_pending
        self._room: list[asyncio.Future[None]] = []
        self._room_lock = threading.Lock()
        self._interval = flush_ms / 1000
        self._signer = signer
        self._checkpoint_every = checkpoint_every
        self._checkpoint_s = checkpoint_s
        self._unsigned = 0
        self._last_checkpoint = time.monotonic()
        self._last_roll_up = 0.0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="governd-ledger", daemon=True)
        # The thread wakes on a timer, not per entry: a wake-up per append
        # would contend for the GIL with the request that is being answered.
        self._wake = threading.Event()
        self._flushed = threading.Condition()
        self._written = 0
        self._enqueued = 0
        #: The store refused the last batch (set by the writer thread, read by the event loop).
        self.failing = False
        self._down_at = self._said_at = 0.0

    def start(self) -> None:
        """Start the writer thread; a signing key the ledger has not seen is recorded in it first."""
        self._record_key()
        self._thread.start()

    def _record_key(self) -> None:
        if self._signer is None:
            return
        known = self._storage.signing_key_ids()
        if self._signer.key_id in known:
            return
        before = f"replaces {', '.join(known)}" if known else "first key"
        self._queue.put(
            control_entry(
                "signing_key",
                f"checkpoint key {self._signer.key_id} ({before}): public {self._signer.public_hex}",
            )
        )
        self._enqueued += 1
        self._storage.remember_signing_key(
            self._signer.key_id, self._signer.public_hex, time.time()
        )

    @property
    def strict(self) -> bool:
        """Whether appends wait for an fsynced commit (strict durability)."""
        return self._strict

    def append(self, entry: LedgerEntry) -> asyncio.Future[None] | None:
        """Queue an entry (never blocks, never raises); in strict mode, a future of its durability."""
        self._enqueued += 1
        if not self._strict:
            self._queue.put(entry)
            if self.lag < self._max_pending:
                return None
            # Backpressure: the caller waits until the store has caught up; nothing is dropped.
            room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            with self._room_lock:
                self._room.append(room)
            return room
        loop = asyncio.get_running_loop()
        durable: asyncio.Future[None] = loop.create_future()
        self._queue.put((entry, durable))
        self._wake.set()
        return durable

    @property
    def lag(self) -> int:
        """Entries queued and not yet stored."""
        return self._enqueued - self._written

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything appended so far is stored."""
        target = self._enqueued
        self._wake.set()
        with self._flushed:
            return self._flushed.wait_for(lambda: self._written >= target, timeout)

    def close(self) -> None:
        """Store what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
            self._thread.join()

    def _run(self) -> None:
        stopping = False
        pending: list[LedgerEntry] = []
        waiting: list[asyncio.Future[None]] = []
        while not stopping:
            self._wake.wait(self._interval)
            self._wake.clear()
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, tuple):
                    pending.append(item[0])
                    waiting.append(item[1])
                elif isinstance(item, LedgerEntry):
                    pending.append(item)
            pending = self._write(pending, retry_forever=not stopping)
            if waiting and not pending:
                _resolve(waiting)
                waiting = []
            self._maybe_checkpoint(force=stopping)
            self._maybe_roll_up(force=stopping)

    def _maybe_roll_up(self, force: bool) -> None:
        """Fold new entries into the rollups about once a second."""
        if self.failing or not self._written:
            return
        if not (force or time.monotonic() - self._last_roll_up >= 1.0):
            return
        try:
            self._storage.roll_up()
        except Exception as exc:
            log.warning("ledger roll-up failed (%s); will retry", _why(exc))
        self._last_roll_up = time.monotonic()

    def _maybe_checkpoint(self, force: bool) -> None:
        """Sign a checkpoint every ``checkpoint_every`` entries or ``checkpoint_s`` seconds."""
        if self._signer is None or not self._unsigned or self.failing:
            return
        due = time.monotonic() - self._last_checkpoint >= self._checkpoint_s
        if not (force or due or self._unsigned >= self._checkpoint_every):
            return
        try:
            self._storage.checkpoint(self._signer, time.time())
        except Exception as exc:
            log.warning("ledger checkpoint failed (%s); will retry", _why(exc))
            return
        self._unsigned = 0
        self._last_checkpoint = time.monotonic()

    def _write(self, pending: list[LedgerEntry], retry_forever: bool) -> list[LedgerEntry]:
        pause = self._interval * 10
        while pending:
            batch = pending[:_MAX_BATCH]
            try:
                self._storage.append(batch)
            except Exception as exc:
                self._failed(exc, len(pending))
                if not retry_forever:
                    return pending
                time.sleep(pause)
                pause = min(1.0, pause * 2)
                continue
            if self.failing:
                log.warning("ledger store is back after %.1f s", time.monotonic() - self._down_at)
                self.failing = False
            del pending[: len(batch)]
            self._unsigned += len(batch)
            self._mark_written(len(batch))
            if self._room and self.lag < self._max_pending:
                with self._room_lock:
                    waiting, self._room = self._room, []
                _resolve(waiting)
        return pending

    def _failed(self, exc: Exception, kept: int) -> None:
        """Say once that the store fails, then at most every 30 s (not a traceback per retry)."""
        now = time.monotonic()
        if not self.failing:
            self.failing, self._down_at, self._said_at = True, now, now
            log.warning("ledger store failed (%s); %d entries kept, retrying", _why(exc), kept)
        elif now - self._said_at >= _SAY_EVERY_S:
            self._said_at = now
            log.warning("ledger store still failing (%s); %d entries kept", _why(exc), kept)

    @property
    def bound(self) -> int:
        """How many entries batched durability buffers before new work is refused."""
        return self._max_pending

    @property
    def accepting(self) -> bool:
        """Whether new work may start: strict needs a working store; batched, room to buffer."""
        if not self.failing:
            return True
        return not self._strict and self.lag < self._max_pending

    def _mark_written(self, n: int) -> None:
        with self._flushed:
            self._written += n
            self._flushed.notify_all()


def control_entry(
    operation: str,
    detail: str,
    principal: str = "",
    ts: float | None = None,
    run_id: str | None = None,
    signals: dict[str, Any] | None = None,
) -> LedgerEntry:
    """An entry recording a change to live state (budgets, keys, a run's level, the ledger's own).

    ``signals``: the figures that justified the change (an SLO's window counts), as JSON.
    """
    return LedgerEntry(
        id=new_id("ctl_"),
        ts=time.time() if ts is None else ts,
        kind="control",
        operation=operation,
        principal=principal,
        run_id=run_id,
        reasons=detail,
        signals=orjson.dumps(signals).decode() if signals is not None else None,
    )


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    """Mark futures done from the writer thread, on their own event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for f in futures:
        by_loop.setdefault(f.get_loop(), []).append(f)
    for loop, group in by_loop.items():
        loop.call_soon_threadsafe(_set_all, group)


def _set_all(futures: list[asyncio.Future[None]]) -> None:
    for f in futures:
        if not f.done():
            f.set_result(None)
