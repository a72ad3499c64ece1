"""Tenants are isolated on every API a key can reach, and the admin API answers only the admin.

Three keys: team ``red``, its project ``red/app``, and team ``blue``. A key
sees its own subtree (a team its projects, never its parent or a sibling)
in jobs, logs, models and explain; every admin route refuses them all. And
nothing a key was given, nor the admin key, nor an upstream credential,
appears in anything the run wrote: the log, the ledger, errors, metrics.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator

import httpx2
import pytest

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, governd_server
from tests.conftest import write_yaml

ADMIN = "adm-isolation-0123456789abcdef"
UPSTREAM_KEY = "sk-isolation-upstream-credential-42"
CONFIG = f"""
principals:
  org: acme
  teams:
    red: {{projects: {{app: {{}}}}, models: [m, only-red]}}
    blue: {{models: [m]}}
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}
  hosted: {{kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: {UPSTREAM_KEY},
            connect_timeout_s: 0.5}}
models:
  m: {{deployments: [{{upstream: sim, model: sim}}]}}
  only-red: {{deployments: [{{upstream: hosted, model: x}}]}}
compute:
  flavors: {{cpu: {{price_per_hour: 1}}}}
  nodes: {{box: {{devices: [{{flavor: cpu, count: 4}}]}}}}
  queues: {{all: {{principals: [red, blue], quotas: {{cpu: {{nominal: 4}}}}}}}}
  default_max_runtime_s: 30
ledger: {{flush_ms: 5}}
"""
#: Every admin route a key might try (GET): each must refuse it.
ADMIN_GETS = [
    "/admin/v1/keys",
    "/admin/v1/ledger",
    "/admin/v1/ledger/summary",
    "/admin/v1/usage",
    "/admin/v1/budgets",
    "/admin/v1/approvals",
    "/admin/v1/jobs",
    "/admin/v1/compute",
    "/admin/v1/runs",
    "/admin/v1/slos",
    "/admin/v1/releases",
    "/admin/v1/deployments",
    "/admin/v1/capacity",
    "/admin/v1/tools",
    "/admin/v1/upstreams/sim/faults",
    "/admin/v1/explain/blue",
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("isolation")
    with governd_server(tmp, write_yaml(tmp / "governd.yaml", CONFIG), ADMIN) as served:
        admin = AdminClient(served.url, ADMIN)
        keys = {
            p: admin.call("POST", "/admin/v1/keys", {"principal": p})["key"]
            for p in ("red", "red/app", "blue")
        }
        yield served, keys


def get(served: Served, key: str, path: str) -> httpx2.Response:
    return httpx2.get(served.url + path, headers={"authorization": f"Bearer {key}"})


def submit(served: Served, key: str, secret: str) -> str:
    body = {
        "queue": "all",
        "gpus": 1,
        "command": [sys.executable, "-c", "print('hello')"],
        "env": {"APP_TOKEN": secret},
    }
    reply = httpx2.post(
        served.url + "/v1/jobs", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


@pytest.mark.parametrize(
    ("owner", "reader", "sees"),
    [
        ("red/app", "red", True),  # a team sees its projects
        ("red", "red/app", False),  # never its parent
        ("red", "blue", False),  # nor a sibling
        ("blue", "red", False),
    ],
)
def test_a_key_sees_jobs_and_logs_of_its_subtree_only(
    world: tuple[Served, dict[str, str]], owner: str, reader: str, sees: bool
) -> None:
    served, keys = world
    job = submit(served, keys[owner], "tok-" + owner.replace("/", "-"))
    for path in (f"/v1/jobs/{job}", f"/v1/jobs/{job}/logs"):
        assert get(served, keys[reader], path).status_code == (200 if sees else 404), path
    listed = {j["id"] for j in get(served, keys[reader], "/v1/jobs?limit=1000").json()["jobs"]}
    assert (job in listed) is sees
    if not sees:
        cancel = httpx2.post(
            served.url + f"/v1/jobs/{job}/cancel",
            headers={"authorization": f"Bearer {keys[reader]}"},
        )
        assert cancel.status_code == 404


@pytest.mark.parametrize(("who", "other"), [("red", "blue"), ("blue", "red"), ("red/app", "red")])
def test_a_key_explains_itself_and_lists_its_models_only(
    world: tuple[Served, dict[str, str]], who: str, other: str
) -> None:
    served, keys = world
    assert get(served, keys[who], f"/admin/v1/explain/{who}").status_code == 200
    assert get(served, keys[who], f"/admin/v1/explain/{other}").status_code in (401, 403)
    models = {m["id"] for m in get(served, keys[who], "/v1/models").json()["data"]}
    assert ("only-red" in models) is who.startswith("red")


@pytest.mark.parametrize("path", ADMIN_GETS)
def test_every_admin_route_refuses_every_key(
    world: tuple[Served, dict[str, str]], path: str
) -> None:
    served, keys = world
    for principal in ("red", "blue"):
        reply = get(served, keys[principal], path)
        if path == f"/admin/v1/explain/{principal}":
            continue
        assert reply.status_code in (401, 403), (path, principal, reply.status_code)
        assert set(reply.json()["error"]) == {"message", "type", "code", "param"}


def test_no_secret_appears_in_anything_the_run_wrote(world: tuple[Served, dict[str, str]]) -> None:
    served, keys = world
    # Something for every surface to say: a refused call, an upstream failure, a job's env.
    bad = get(served, "gvd-" + "z" * 43, "/v1/models")
    assert bad.status_code == 401
    failed = httpx2.post(
        served.url + "/v1/chat/completions",
        json={"model": "only-red", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {keys['red']}"},
    )
    assert failed.status_code in (502, 503)
    submit(served, keys["red"], "job-secret-value-77")
    metrics = httpx2.get(served.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"}).text
    AdminClient(served.url, ADMIN).call("GET", "/admin/v1/ledger", limit=1)  # flushed
    ledger_db = served.log.parent / "ledger.db"
    with sqlite3.connect(ledger_db) as db:
        rows = [
            " ".join(map(str, r)) for t in _tables(db) for r in db.execute(f"SELECT * FROM {t}")
        ]
    written = "\n".join([served.output(), metrics, failed.text, bad.text, *rows])
    secrets = [ADMIN, UPSTREAM_KEY, "job-secret-value-77", *keys.values()]
    leaked = [s for s in secrets if s in written]
    assert not leaked, f"secrets written somewhere: {[s[:8] + '...' for s in leaked]}"


def _tables(db: sqlite3.Connection) -> list[str]:
    return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
