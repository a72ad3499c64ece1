"""A throwaway PostgreSQL server on loopback, for tests and benchmarks.

PostgreSQL refuses to run as root, so initdb and pg_ctl run as the
``postgres`` user (``runuser``). fsync is off: this is for tests only.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from governd.server.launcher import free_port


class PostgresCluster:
    """A running cluster; ``new_database`` hands out empty databases."""

    def __init__(self, port: int, pg_ctl: list[str] | None = None) -> None:
        self.port = port
        self._made = itertools.count()
        self._pg_ctl = pg_ctl or []

    def stop(self) -> None:
        """Stop the server at once (as a crash would), keeping its data."""
        _as_postgres(*self._pg_ctl, "-m", "immediate", "stop")

    def start(self) -> None:
        """Start it again on the same port; returns once it accepts connections."""
        _as_postgres(*self._pg_ctl, "-w", "start")

    def new_database(self) -> str:
        """A SQLAlchemy URL of an empty database of its own."""
        import psycopg

        name = f"governd_{next(self._made)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"


def _as_postgres(*cmd: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Start a cluster (initdb + pg_ctl on a free port), stop and remove it afterwards."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not bins:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="governd-pg-"))
    shutil.chown(base, "postgres", "postgres")
    port = free_port()
    data = str(base / "data")
    _as_postgres(
        str(bins[-1] / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"
    )
    options = (
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    )
    pg_ctl = [str(bins[-1] / "pg_ctl"), "-D", data, "-o", options, "-l", str(base / "log")]
    _as_postgres(*pg_ctl, "-w", "start")
    cluster = PostgresCluster(port, pg_ctl)
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # a test may have stopped it
            cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
