"""Starts ``governd serve`` as a child process and waits until it answers ``/readyz``.

Used by ``governd demo``, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running child server."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the server wrote so far."""
        return self.log.read_text(errors="replace")


def wait_ready(
    proc: subprocess.Popen[bytes],
    url: str,
    log: Path,
    timeout: float = 60,
    any_status: bool = False,
) -> None:
    """Poll ``url`` until it answers 2xx (any HTTP status with ``any_status``); fail if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            if any_status:
                return
            time.sleep(0.05)
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()}")


@contextlib.contextmanager
def serve_process(
    args: Sequence[str],
    ready_path: str,
    port: int,
    log: Path,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    any_status: bool = False,
) -> Iterator[Served]:
    """Run ``python -m <args>`` until the block ends (SIGTERM, then SIGKILL)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", *args],
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, url + ready_path, log, any_status=any_status)
        yield Served(url, proc, log)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def governd_server(
    data_dir: Path,
    config: Path | None = None,
    admin_key: str = "adm-test",
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> Iterator[Served]:
    """``governd serve`` on a free port with its ledger in ``data_dir``."""
    port = free_port()
    args = ["governd", "serve", "--port", str(port)]
    if config is not None:
        args += ["--config", str(config)]
    full_env = {
        "GOVERND_STORAGE": f"sqlite:///{data_dir / 'ledger.db'}",
        "GOVERND_ADMIN_KEY": admin_key,
        **(env or {}),
    }
    with serve_process(args, "/readyz", port, data_dir / "server.log", full_env, prefix) as served:
        yield served
