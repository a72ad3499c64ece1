"""Waiting for a server a test started to listen on loopback (or to die trying)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

#: Answers whether a fresh connection shows the server ready (default: it accepted).
Probe = Callable[[socket.socket], bool]


def wait_listening(
    proc: subprocess.Popen[bytes], port: int, why_not: Callable[[], str], probe: Probe | None = None
) -> None:
    """Return once ``port`` accepts (and ``probe`` agrees); ``RuntimeError`` with ``why_not()``
    if the process exits or 20 s pass first."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if probe is None or probe(conn):
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(why_not())
        time.sleep(0.05)
