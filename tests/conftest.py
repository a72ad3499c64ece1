"""Shared fixtures: a fake upstream process (the outside world) and helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governd.cli.admin_client import AdminClient, AdminError
from governd.server.launcher import free_port, serve_process
from governd.testing.postgres import PostgresCluster, postgres_cluster
from governd.testing.ray_head import ray_head
from governd.testing.redis import redis_server


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
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """PostgreSQL started for real, for the whole session."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie no longer does; an orphan's reaper may be slow to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def write_yaml(path: Path, text: str) -> Path:
    """Write a config file and return its path."""
    path.write_text(text)
    return path


def governd_cli(url: str, admin_key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``governd ARGS`` against the server at ``url`` (no admin key when None)."""
    env = {**os.environ, "GOVERND_URL": url}
    env.pop("GOVERND_ADMIN_KEY", None)
    if admin_key:
        env["GOVERND_ADMIN_KEY"] = admin_key
    return subprocess.run(
        [sys.executable, "-m", "governd", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


#: Environment for a Ray that stays on 127.0.0.1 and needs no auth token.
@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Ray head on 127.0.0.1 with 8 declared GPUs, once per test session (Ray Client URL)."""
    with ray_head(tmp_path_factory.mktemp("ray")) as address:
        yield address


def entry_of(admin: AdminClient, request_id: str, timeout: float = 20.0) -> dict[str, object]:
    """The ledger entry of a request, once the server has settled it.

    A whole reply is sent before its call is settled (``SettledAfter``), so
    the entry can trail the reply by a moment.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            found: dict[str, object] = admin.call("GET", f"/admin/v1/ledger/{request_id}")
            return found
        except AdminError as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.05)
