"""Shared fixtures: a fake upstream process (the outside world) and helpers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
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
RAY_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Ray head on 127.0.0.1 with 8 declared GPUs, once per test session (Ray Client URL)."""
    tmp = tmp_path_factory.mktemp("ray")
    client_port = free_port()
    args = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--num-gpus=8",
        "--num-cpus=2",
        "--node-ip-address=127.0.0.1",
        f"--port={free_port()}",
        f"--ray-client-server-port={client_port}",
        # Ray's fixed default ports can be taken by a port another test picked: pick them too.
        *(
            f"--{name}={free_port()}"
            for name in (
                "dashboard-agent-listen-port",
                "dashboard-agent-grpc-port",
                "metrics-export-port",
                "runtime-env-agent-port",
                "node-manager-port",
                "object-manager-port",
            )
        ),
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={tmp}",
    ]
    # Ray would swap 127.0.0.1 for the machine's outward address (and traffic stays on loopback
    # here); this test cluster also runs without auth tokens, like every process the tests start.
    os.environ.update(RAY_LOOPBACK)
    with (tmp / "head.log").open("wb") as log:
        head = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        address = f"ray://127.0.0.1:{client_port}"
        probe = [sys.executable, "-c", f"import ray; ray.init(address={address!r}); ray.shutdown()"]
        while True:  # the client port opens before the server behind it is ready: connect once
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", client_port), 1),
            ):
                if subprocess.run(probe, capture_output=True, timeout=120).returncode == 0:
                    break
            assert head.poll() is None, (tmp / "head.log").read_text()
            assert time.monotonic() < deadline, "Ray did not start"
            time.sleep(0.2)
        yield address
    finally:
        # A throwaway cluster: its whole process group goes at once (`ray start --block`
        # ignores SIGTERM for 30 s and more).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()


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
