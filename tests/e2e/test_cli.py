"""The operational commands against a running server, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import openai

from tests.conftest import governd_cli
from tests.e2e.conftest import ADMIN, Gateway


def governd(
    gateway: Gateway, *args: str, admin: str | None = ADMIN
) -> subprocess.CompletedProcess[str]:
    return governd_cli(gateway.url, admin, *args)


def test_keys_create_list_revoke(gateway: Gateway) -> None:
    made = governd(
        gateway, "keys", "create", "--principal", "research/agents", "--name", "cli", "--json"
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert set(key) == {"id", "key", "principal"} and key["principal"] == "acme/research/agents"
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key["key"], max_retries=0)
    assert client.models.list().data
    listed = governd(gateway, "keys", "list", "--principal", "research/agents")
    assert key["id"] in listed.stdout and key["key"] not in listed.stdout
    assert governd(gateway, "keys", "revoke", key["id"]).returncode == 0
    listed = json.loads(governd(gateway, "keys", "list", "--json").stdout)["keys"]
    assert any(k["id"] == key["id"] and k["revoked_at"] for k in listed)


def test_ledger_tail_shows_the_newest_entries(gateway: Gateway) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="chat-sim", messages=[{"role": "user", "content": "tail me"}]
    )
    rid = raw.headers["x-governd-request-id"]
    out = governd(gateway, "ledger", "tail", "-n", "5")
    assert out.returncode == 0 and rid in out.stdout.splitlines()[-1]
    as_json = governd(gateway, "ledger", "tail", "-n", "1", "--json")
    assert json.loads(as_json.stdout)["id"] == rid


def test_clear_errors_without_admin_key_or_server(gateway: Gateway) -> None:
    no_key = governd(gateway, "keys", "list", admin=None)
    assert no_key.returncode == 1 and "admin" in no_key.stderr and "Traceback" not in no_key.stderr
    bad = governd(gateway, "keys", "create", "--principal", "nope")
    assert bad.returncode == 1 and "unknown principal" in bad.stderr
    down = subprocess.run(
        [
            sys.executable,
            "-m",
            "governd",
            "keys",
            "list",
            "--url",
            "http://127.0.0.1:9",
            "--admin-key",
            "x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 1 and "cannot reach governd" in down.stderr


def test_audit_verify_on_a_live_servers_ledger(gateway: Gateway) -> None:
    gateway.client().chat.completions.create(
        model="chat-sim", messages=[{"role": "user", "content": "audit"}]
    )
    gateway.admin.call("GET", "/admin/v1/ledger", limit=1)  # flushed to storage
    db = gateway.served.log.parent / "ledger.db"
    env = {**os.environ, "GOVERND_STORAGE": f"sqlite:///{db}"}
    out = subprocess.run(
        [sys.executable, "-m", "governd", "audit", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["intact"] and report["entries"] >= 1


def test_ledger_query_filters_and_exports_jsonl(gateway: Gateway) -> None:
    client = gateway.client(default_headers={"x-governd-run": "run-query-1"})
    for _ in range(3):
        client.chat.completions.create(
            model="chat-sim", messages=[{"role": "user", "content": "q"}]
        )
    out = governd(gateway, "ledger", "query", "--run", "run-query-1", "--jsonl", "--limit", "0")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 3 and {r["run_id"] for r in rows} == {"run-query-1"}
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    denied = governd(
        gateway, "ledger", "query", "--decision", "deny", "--since", "1h", "--limit", "2", "--jsonl"
    )
    assert all(json.loads(line)["decision"] == "deny" for line in denied.stdout.splitlines())
    bad = governd(gateway, "ledger", "query", "--since", "yesterday")
    assert bad.returncode == 1 and "invalid time" in bad.stderr
