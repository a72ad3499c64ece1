"""A throwaway redis-server on loopback, for tests and benchmarks (no persistence)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from governd.server.launcher import free_port, stop
from governd.testing.listening import wait_listening


@contextlib.contextmanager
def redis_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """Start redis-server on ``port`` (a free one if None); yields its URL; stops it at the end."""
    port = port or free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(
            proc,
            port,
            lambda: "redis-server did not start (is it installed? apt-get install redis-server)",
            _pong,
        )
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


def _pong(conn: socket.socket) -> bool:
    conn.sendall(b"PING\r\n")
    return conn.recv(16).startswith(b"+PONG")
