"""Budgets and rate limits through the real server: concurrency, runtime changes, restarts."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from governd import tokens
from governd.cli.admin_client import AdminClient
from governd.ledger.signing import Signer
from governd.server.launcher import Served, governd_server
from governd.testing.postgres import PostgresCluster
from tests.conftest import entry_of, governd_cli, write_yaml

ADMIN = "adm-budgets"
MESSAGES = [{"role": "user", "content": "Count to twenty, please."}]
OUT = 20
IN_PRICE, OUT_PRICE = 3.0, 15.0
COST = (tokens.count_messages(MESSAGES) * IN_PRICE + OUT * OUT_PRICE) / 1e6
AFFORDS = 50
LIMIT = COST * (AFFORDS + 0.5)

CONFIG = f"""
principals:
  org: acme
  teams:
    capped:
      budgets: [{{unit: usd, period: day, limit: {LIMIT!r}}}]
    keyed: {{}}
    throttled: {{limits: {{rpm: 3}}}}
    shared:
      budgets: [{{unit: usd, period: day, limit: {LIMIT!r}}}]
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000, max_concurrency: 256,
         prefix_cache_tokens: 0, output_tokens: [{OUT}, {OUT}]}}
ledger: {{flush_ms: 5}}
models:
  m:
    deployments: [{{upstream: sim, model: sim}}]
    pricing: {{input: {IN_PRICE}, output: {OUT_PRICE}}}
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("budgets")
    write_yaml(tmp / "governd.yaml", CONFIG)
    return tmp


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[Served]:
    with governd_server(data_dir, data_dir / "governd.yaml", ADMIN) as served:
        yield served


def key_for(served: Served, principal: str) -> dict[str, str]:
    made: dict[str, str] = AdminClient(served.url, ADMIN).call(
        "POST", "/admin/v1/keys", {"principal": principal}
    )
    return made


def cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return governd_cli(served.url, ADMIN, *args)


async def burst(urls: list[str], key: str, total: int = 1000) -> Counter[str]:
    """``total`` concurrent requests spread over ``urls``; counts of outcomes."""
    clients = [
        openai.AsyncOpenAI(base_url=u + "/v1", api_key=key, max_retries=0, timeout=120)
        for u in urls
    ]

    async def one(i: int) -> str:
        try:
            await clients[i % len(clients)].chat.completions.create(
                model="m", messages=MESSAGES, max_tokens=OUT
            )  # type: ignore[arg-type]
            return "ok"
        except openai.RateLimitError as exc:
            return str(exc.code)

    results = Counter(await asyncio.gather(*(one(i) for i in range(total))))
    for c in clients:
        await c.close()
    return results


def test_a_thousand_concurrent_requests_never_overspend(server: Served) -> None:
    results = asyncio.run(burst([server.url], key_for(server, "capped")["key"]))
    assert results == {"ok": AFFORDS, "budget_exceeded": 1000 - AFFORDS}
    admin = AdminClient(server.url, ADMIN)
    spent = sum(
        r["cost_usd"]
        for r in admin.call("GET", "/admin/v1/ledger/summary", principal="capped")["principals"]
    )
    assert LIMIT - COST <= spent <= LIMIT
    shown = json.loads(cli(server, "budgets", "show", "capped", "--json").stdout)["budgets"]
    assert shown == [
        {
            "principal": "acme/capped",
            "unit": "usd",
            "period": "day",
            "limit": LIMIT,
            "spent": pytest.approx(spent),
            "reserved": 0.0,
            "soft": None,
        }
    ]


def test_two_replicas_sharing_redis_never_overspend(data_dir: Path, redis_url: str) -> None:
    env = {"GOVERND_STATE": redis_url, "GOVERND_STORAGE": f"sqlite:///{data_dir / 'replicas.db'}"}
    (data_dir / "a").mkdir()
    (data_dir / "b").mkdir()
    with (
        governd_server(data_dir / "a", data_dir / "governd.yaml", ADMIN, env=env) as a,
        governd_server(data_dir / "b", data_dir / "governd.yaml", ADMIN, env=env) as b,
    ):
        results = asyncio.run(burst([a.url, b.url], key_for(a, "shared")["key"]))
        rows = AdminClient(b.url, ADMIN).call(
            "GET", "/admin/v1/ledger/summary", principal="shared"
        )["principals"]
        entries = AdminClient(a.url, ADMIN).call(
            "GET", "/admin/v1/ledger", principal="shared", limit=1000
        )["entries"]
    # Request ids start with a per-process prefix: which replica handled what.
    handled = Counter((e["id"][:16], e["status"]) for e in entries)
    spent = sum(r["cost_usd"] for r in rows)
    assert results == {"ok": AFFORDS, "budget_exceeded": 1000 - AFFORDS}
    assert LIMIT - COST <= spent <= LIMIT
    replicas = {rid for rid, _ in handled}
    assert len(replicas) == 2
    # Each replica alone would admit 50: together they admitted 50, so both saw one budget.
    assert sum(n for (_, status), n in handled.items() if status == 200) == AFFORDS
    assert all(handled[(rid, 429)] > 0 for rid in replicas)


def test_a_budget_set_through_one_replica_binds_every_replica(
    data_dir: Path, redis_url: str, postgres: PostgresCluster
) -> None:
    """Two replicas on one Redis and one PostgreSQL: a runtime change is everyone's at once."""
    env = {"GOVERND_STATE": redis_url, "GOVERND_STORAGE": postgres.new_database()}
    signed = CONFIG.replace("ledger: {flush_ms: 5}", "ledger: {flush_ms: 5, signing_key: pg.pem}")
    config = write_yaml(data_dir / "pg.yaml", signed)
    Signer.load(data_dir / "pg.pem", create=True)  # a PostgreSQL ledger needs a named key
    (data_dir / "ra").mkdir()
    (data_dir / "rb").mkdir()
    with (
        governd_server(data_dir / "ra", config, ADMIN, env=env) as a,
        governd_server(data_dir / "rb", config, ADMIN, env=env) as b,
    ):
        made = key_for(a, "keyed")
        via = {
            r.url: openai.OpenAI(base_url=r.url + "/v1", api_key=made["key"], max_retries=0)
            for r in (a, b)
        }
        via[b.url].chat.completions.create(model="m", messages=MESSAGES, max_tokens=OUT)  # type: ignore[arg-type]
        out = cli(a, "budgets", "set", made["id"], "--tokens", str(2 * OUT), "--period", "hour")
        assert out.returncode == 0, out.stderr
        # B lists it, with B's own earlier call counted against it ...
        shown = json.loads(cli(b, "budgets", "show", made["id"], "--json").stdout)["budgets"]
        assert [(x["limit"], x["spent"]) for x in shown] == [
            (2 * OUT, tokens.count_messages(MESSAGES) + OUT)
        ]
        # ... and both enforce it: nothing more fits on either.
        for client in via.values():
            with pytest.raises(openai.RateLimitError, match="tokens/hour"):
                client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=OUT)  # type: ignore[arg-type]
        # A change through B binds A just as well.
        out = cli(b, "budgets", "set", made["id"], "--tokens", "100000", "--period", "hour")
        assert out.returncode == 0, out.stderr
        for client in via.values():
            client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=OUT)  # type: ignore[arg-type]
        shown = json.loads(cli(a, "budgets", "show", made["id"], "--json").stdout)["budgets"]
        assert [(x["limit"], x["spent"]) for x in shown] == [
            (100000, 3 * (tokens.count_messages(MESSAGES) + OUT))
        ]


def test_refusal_names_the_budget_and_reaches_no_upstream(server: Served) -> None:
    key = key_for(server, "capped")["key"]
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.code == "budget_exceeded"
    assert "acme/capped usd/day" in info.value.message
    headers = info.value.response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-governd-decision"] == "deny"
    entry = AdminClient(server.url, ADMIN).call(
        "GET", f"/admin/v1/ledger/{headers['x-governd-request-id']}"
    )
    assert entry["reasons"] == "budget:acme/capped usd/day" and entry["deployment"] is None


def test_operators_change_budgets_at_runtime_and_it_is_recorded(server: Served) -> None:
    made = key_for(server, "keyed")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=made["key"], max_retries=0)
    first = client.chat.completions.with_raw_response.create(
        model="m",
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=OUT,
    )
    entry_of(AdminClient(server.url, ADMIN), first.headers["x-governd-request-id"])  # recorded
    out = cli(
        server, "budgets", "set", made["id"], "--tokens", str(2 * OUT), "--period", "hour", "--json"
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["principal"] == f"acme/keyed/{made['id']}"
    # The key's spend this hour (one call) was resumed from the ledger: nothing more fits.
    with pytest.raises(openai.RateLimitError, match="tokens/hour"):
        client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=OUT)  # type: ignore[arg-type]
    control = AdminClient(server.url, ADMIN).call(
        "GET", "/admin/v1/ledger", principal="keyed", order="desc", limit=5
    )
    changes = [e for e in control["entries"] if e["kind"] == "control"]
    assert changes and "tokens/hour: limit new -> 40 tokens" in changes[0]["reasons"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["budgets", "set", "capped", "--period", "day"],
            "exactly one of --usd, --tokens or --device-hours",
        ),
        (["budgets", "set", "capped", "--usd", "-1", "--period", "day"], "limit"),
        (["budgets", "set", "capped", "--usd", "1", "--period", "day", "--soft", "2"], "soft"),
        (["budgets", "set", "nope", "--usd", "1", "--period", "day"], "unknown principal"),
        (["budgets", "show", "key_missing"], "no key"),
    ],
)
def test_bad_budget_commands_say_what_is_wrong(
    server: Served, args: list[str], message: str
) -> None:
    out = cli(server, *args)
    assert out.returncode != 0 and message in out.stderr and "Traceback" not in out.stderr


def test_rate_limit_answers_429_with_retry_after(server: Served) -> None:
    client = openai.OpenAI(
        base_url=server.url + "/v1", api_key=key_for(server, "throttled")["key"], max_retries=0
    )
    for _ in range(3):
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES)  # type: ignore[arg-type]
    assert (
        info.value.code == "rate_limit_exceeded" and "3 requests per minute" in info.value.message
    )
    # 3 per minute: the next one fits 20 s after the first.
    assert 15 <= int(info.value.response.headers["retry-after"]) <= 20


def test_spend_survives_a_restart(server: Served, data_dir: Path) -> None:
    before = json.loads(cli(server, "budgets", "show", "capped", "--json").stdout)["budgets"][0][
        "spent"
    ]
    assert before > 0
    restart = data_dir / "restart"
    restart.mkdir()
    env = {"GOVERND_STORAGE": f"sqlite:///{data_dir / 'ledger.db'}"}
    server.process.terminate()
    server.process.wait(15)
    with governd_server(restart, data_dir / "governd.yaml", ADMIN, env=env) as again:
        shown = json.loads(cli(again, "budgets", "show", "capped", "--json").stdout)["budgets"]
        key = key_for(again, "capped")["key"]
        client = openai.OpenAI(base_url=again.url + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=OUT)  # type: ignore[arg-type]
    assert shown[0]["spent"] == pytest.approx(before)
