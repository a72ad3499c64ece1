"""PostgreSQL goes away under a running governd, and comes back: nothing acknowledged is lost.

Each test starts a PostgreSQL cluster of its own and stops it mid-run, as a
crash would (``pg_ctl -m immediate``). Batched durability keeps serving keys
it knows, buffers the entries and says so in ``/readyz``; strict durability
holds a completed call's answer until its entry is stored and refuses new
work meanwhile. A refusal is a 503 ``storage_unavailable`` with its request
id, never a 500, and the log says so in a few lines, not a traceback per try.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.server.launcher import Served, governd_server
from governd.testing.postgres import PostgresCluster, postgres_cluster
from tests.conftest import write_yaml

ADMIN = "adm-storage-faults"
MESSAGES = [{"role": "user", "content": "hi"}]
CONFIG = """
principals: {{org: acme, teams: {{t: {{}}}}}}
upstreams: {{sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}}}
models: {{m: {{deployments: [{{upstream: sim, model: sim}}]}}}}
ledger: {{flush_ms: 5, durability: {durability}, signing_key: signing.pem}}
"""


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with postgres_cluster() as found:
        yield found


@contextlib.contextmanager
def serve(tmp: Path, cluster: PostgresCluster, durability: str) -> Iterator[Served]:
    cfg = write_yaml(tmp / "governd.yaml", CONFIG.format(durability=durability))
    Signer.load(tmp / "signing.pem", create=True)
    env = {"GOVERND_STORAGE": cluster.new_database()}
    with governd_server(tmp, cfg, ADMIN, env=env) as served:
        yield served


def client_of(served: Served) -> openai.OpenAI:
    key = AdminClient(served.url, ADMIN).call("POST", "/admin/v1/keys", {"principal": "t"})["key"]
    return openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0, timeout=120)


def ask(client: openai.OpenAI) -> str:
    """A call's request id (raises on a refusal)."""
    raw = client.chat.completions.with_raw_response.create(
        model="m",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=4,
    )
    return raw.headers["x-governd-request-id"]


def ready(served: Served) -> tuple[int, dict[str, object]]:
    reply = httpx2.get(served.url + "/readyz")
    return reply.status_code, reply.json()


def stored(admin: AdminClient) -> set[str]:
    """The ids of every entry in the ledger, page by page."""
    found: set[str] = set()
    after = None
    while True:
        page = admin.call("GET", "/admin/v1/ledger", limit=1000, after=after)
        found |= {e["id"] for e in page["entries"]}
        if (after := page["next"]) is None:
            return found


def until(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_batched_keeps_serving_known_keys_and_stores_every_entry_once_back(
    tmp_path: Path, cluster: PostgresCluster
) -> None:
    with serve(tmp_path, cluster, "batched") as served:
        client = client_of(served)
        ids = [ask(client)]
        cluster.stop()
        down_until = time.monotonic() + 6  # past the 5 s key cache: known keys keep working
        while time.monotonic() < down_until:
            ids.append(ask(client))
        until(lambda: ready(served)[1]["status"] == "degraded", "readyz never said degraded")
        code, body = ready(served)
        assert code == 200 and body["ledger"]["store"] == "unreachable"  # type: ignore[index]
        stranger = openai.OpenAI(
            base_url=served.url + "/v1", api_key="gvd-" + "x" * 43, max_retries=0
        )
        with pytest.raises(openai.APIStatusError) as unknown:
            ask(stranger)  # a key it never saw cannot be checked: 503, not 401, not 500
        assert unknown.value.status_code == 503 and unknown.value.code == "storage_unavailable"
        assert unknown.value.response.headers["x-governd-request-id"]
        cluster.start()
        until(lambda: ready(served)[1]["status"] == "ready", "readyz never ready again")
        kept = stored(AdminClient(served.url, ADMIN))
        assert set(ids) <= kept, f"{len(set(ids) - kept)} acknowledged entries lost"
        log = served.output()
        assert "Traceback" not in log
        assert log.count("ledger store") <= 4, log[-2000:]


def test_strict_holds_an_answer_until_recorded_and_refuses_new_work(
    tmp_path: Path, cluster: PostgresCluster
) -> None:
    with serve(tmp_path, cluster, "strict") as served:
        client = client_of(served)
        ask(client)
        cluster.stop()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(ask, client)  # completes upstream; its answer waits for its entry
            until(lambda: ready(served)[0] == 503, "readyz never said unavailable")
            with pytest.raises(openai.APIStatusError) as refused:
                ask(client)
            assert refused.value.status_code == 503
            assert refused.value.code == "storage_unavailable"
            assert not held.done(), "answered before its entry was stored"
            cluster.start()
            rid = held.result(timeout=60)
        entry = AdminClient(served.url, ADMIN).call("GET", f"/admin/v1/ledger/{rid}")
        assert entry["status"] == 200
        assert "Traceback" not in served.output()


def test_a_full_disk_under_sqlite_buffers_then_stores_every_entry_once_there_is_room(
    tmp_path: Path,
) -> None:
    """The disk fills (the file-size limit of governd's process), then room comes back."""
    cfg = write_yaml(tmp_path / "governd.yaml", CONFIG.format(durability="batched"))
    Signer.load(tmp_path / "signing.pem", create=True)
    cap = ["prlimit", f"--fsize={3 * 1024 * 1024}:unlimited", "--"]  # soft: raised later
    with governd_server(tmp_path, cfg, ADMIN, prefix=cap) as served:
        client = client_of(served)
        ids = []
        deadline = time.monotonic() + 120
        while ready(served)[1]["status"] != "degraded":  # calls until the ledger cannot grow
            assert time.monotonic() < deadline, "the disk never filled"
            ids.append(ask(client))
        ids += [ask(client) for _ in range(20)]  # answered meanwhile: buffered, not lost
        room = subprocess.run(
            ["prlimit", "--pid", str(served.process.pid), "--fsize=unlimited:unlimited"], check=True
        )
        assert room.returncode == 0
        until(lambda: ready(served)[1]["status"] == "ready", "the ledger never caught up")
        assert set(ids) <= stored(AdminClient(served.url, ADMIN)), "acknowledged entries lost"
        assert "Traceback" not in served.output()
