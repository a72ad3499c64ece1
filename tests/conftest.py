"""Shared fixtures: a fake upstream process (the outside world) and helpers."""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governd.launcher import free_port, serve_process, stop


class FakeUpstreamProc:
    """Handle on a running ``governd.testing.fake_upstream``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.base_url = url + "/v1"

    def requests(self) -> dict[str, Any]:
        """Counts per model and the last body it received."""
        with urllib.request.urlopen(self.url + "/control/requests") as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def count(self, model: str) -> int:
        """How many requests ``model`` got."""
        return int(self.requests()["count"].get(model, 0))


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeUpstreamProc]:
    """A fake OpenAI-compatible server in its own process."""
    port = free_port()
    log = tmp_path_factory.mktemp("fake") / "fake.log"
    args = ["governd.testing.fake_upstream", "--port", str(port)]
    with serve_process(args, "/v1/models", port, log) as served:
        yield FakeUpstreamProc(served.url)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole session."""
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
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
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "redis-server did not start (is it installed? apt-get install redis-server)"
                    ) from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc)


class PostgresCluster:
    """A throwaway PostgreSQL server on loopback; one new database per test."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._made = itertools.count()

    def new_database(self) -> str:
        """A SQLAlchemy URL of an empty database of its own."""
        import psycopg

        name = f"governd_test_{next(self._made)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


def _as_postgres(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """PostgreSQL started for real (initdb + pg_ctl as the postgres user, which it requires)."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bins:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="governd-pg-"))
    shutil.chown(base, "postgres", "postgres")
    port = free_port()
    _as_postgres(
        str(bins[-1] / "initdb"),
        "-D",
        str(base / "data"),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
    )
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    )
    _as_postgres(
        str(bins[-1] / "pg_ctl"),
        "-D",
        str(base / "data"),
        "-w",
        "-o",
        options,
        "-l",
        str(base / "log"),
        "start",
    )
    try:
        yield PostgresCluster(port)
    finally:
        _as_postgres(str(bins[-1] / "pg_ctl"), "-D", str(base / "data"), "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()


def write_yaml(path: Path, text: str) -> Path:
    """Write a config file and return its path."""
    path.write_text(text)
    return path
