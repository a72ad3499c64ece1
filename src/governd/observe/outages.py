"""Log lines during an outage: one line per cause, not a traceback per retry.

While PostgreSQL or Redis is down every loop that reads them fails each
second, and each failure would log its traceback. This filter turns a
record whose exception is an outage (``StorageUnavailable``,
``StateUnavailable``) into one line with its reason, and lets the same line
through at most every 30 s; other records pass untouched.
"""

from __future__ import annotations

import logging
import time

from governd.errors import StateUnavailable, StorageUnavailable

_OUTAGES = (StorageUnavailable, StateUnavailable)
_EVERY_S = 30.0


class OutageFilter(logging.Filter):
    """Drops outage tracebacks and repeats (install on the handlers)."""

    def __init__(self, every_s: float = _EVERY_S) -> None:
        super().__init__()
        self._every = every_s
        self._said: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, _OUTAGES):
            return True
        line = f"{record.getMessage()}: {exc.message}"
        now = time.monotonic()
        said = self._said.get((record.name, line))
        if said is not None and now - said < self._every:
            return False
        self._said[(record.name, line)] = now
        record.msg, record.args, record.exc_info, record.exc_text = line, (), None, None
        return True


def install() -> None:
    """Filter every handler of the root logger (call once logging is configured)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(OutageFilter())
