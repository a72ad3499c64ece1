"""Priorities under saturation of a sim deployment, shedding, and the budget ladder."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from governd import tokens
from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, governd_server
from tests.conftest import write_yaml

ADMIN = "adm-prio"
MSG = [{"role": "user", "content": "hi"}]
BIG_COST = (tokens.count_messages(MSG) + 10) * 10 / 1e6

CONFIG = f"""
principals:
  org: acme
  teams:
    ops: {{priority: critical}}
    thrift:
      budgets: [{{unit: usd, period: day, limit: {4 * BIG_COST!r}, soft: 0.5}}]
      ladder: {{lower_priority_at: 0.5}}
router: {{shed_after_s: 0.2}}
ledger: {{flush_ms: 5}}
upstreams:
  slow: {{kind: sim, prefill_tps: 1000000, decode_tps: 20}}
  fast: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000, prefix_cache_tokens: 0, output_tokens: [10, 10]}}
models:
  one-slot: {{deployments: [{{upstream: slow, model: s, max_in_flight: 1}}]}}
  big: {{deployments: [{{upstream: fast, model: b}}], degrade_to: small, pricing: {{input: 10, output: 10}}}}
  small: {{deployments: [{{upstream: fast, model: s}}], pricing: {{input: 1, output: 1}}}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("prio")
    with governd_server(tmp, write_yaml(tmp / "governd.yaml", CONFIG), ADMIN) as served:
        yield served


def key(server: Served, team: str) -> str:
    made: dict[str, str] = AdminClient(server.url, ADMIN).call(
        "POST", "/admin/v1/keys", {"principal": team}
    )
    return made["key"]


class SlotHolder:
    """A streaming request that holds the one slot until it hangs up."""

    def __init__(self, server: Served, api_key: str) -> None:
        self.conn = http.client.HTTPConnection(
            "127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=60
        )
        body = json.dumps({"model": "one-slot", "stream": True, "max_tokens": 400, "messages": MSG})
        self.conn.request(
            "POST",
            "/v1/chat/completions",
            body,
            {"authorization": f"Bearer {api_key}", "content-type": "application/json"},
        )
        resp = self.conn.getresponse()
        assert resp.status == 200 and resp.read(5) == b"data:"

    def hang_up(self) -> None:
        assert self.conn.sock is not None
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


def capacity(server: Served) -> dict[str, int]:
    found: dict[str, int] = AdminClient(server.url, ADMIN).call("GET", "/admin/v1/capacity")[
        "models"
    ]["one-slot"]
    return found


def wait_until(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_waiting_requests_are_served_by_priority(server: Served) -> None:
    api_key = key(server, "ops")
    holder = SlotHolder(server, api_key)
    done: list[str] = []

    def call(label: str, priority: str | None) -> None:
        headers = {"x-governd-priority": priority} if priority else {}
        client = openai.OpenAI(
            base_url=server.url + "/v1", api_key=api_key, max_retries=0, timeout=60
        )
        client.chat.completions.create(
            model="one-slot", messages=MSG, max_tokens=1, extra_headers=headers
        )  # type: ignore[arg-type]
        done.append(label)

    threads = []
    for label, priority in [("batch", "batch"), ("standard", "standard"), ("critical", None)]:
        threads.append(threading.Thread(target=call, args=(label, priority)))
        threads[-1].start()
        queued = len(threads)
        wait_until(lambda: capacity(server)["waiting"] == queued)  # noqa: B023
    holder.hang_up()
    for t in threads:
        t.join(60)
    assert done == ["critical", "standard", "batch"]


def test_sheddable_requests_are_shed_with_503(server: Served) -> None:
    holder = SlotHolder(server, key(server, "ops"))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key(server, "ops"), max_retries=0)
    try:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(  # type: ignore[call-overload]
                model="one-slot",
                messages=MSG,
                max_tokens=1,
                extra_headers={"x-governd-priority": "sheddable"},
            )
    finally:
        holder.hang_up()
    assert info.value.status_code == 503 and info.value.code == "overloaded"
    assert int(info.value.response.headers["retry-after"]) >= 1


def test_a_request_cannot_raise_its_priority(server: Served) -> None:
    client = openai.OpenAI(
        base_url=server.url + "/v1", api_key=key(server, "thrift"), max_retries=0
    )
    raw = client.chat.completions.with_raw_response.create(  # type: ignore[call-overload]
        model="small", messages=MSG, max_tokens=10, extra_headers={"x-governd-priority": "critical"}
    )
    entry = AdminClient(server.url, ADMIN).call(
        "GET", f"/admin/v1/ledger/{raw.headers['x-governd-request-id']}"
    )
    assert "priority:critical asked, standard allowed" in entry["reasons"]


def test_bad_priority_header_is_a_400(server: Served) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key(server, "ops"), max_retries=0)
    with pytest.raises(openai.BadRequestError, match="x-governd-priority"):
        client.chat.completions.create(  # type: ignore[call-overload]
            model="small", messages=MSG, extra_headers={"x-governd-priority": "urgent"}
        )


def test_ladder_degrades_and_lowers_priority_past_the_soft_line(server: Served) -> None:
    client = openai.OpenAI(
        base_url=server.url + "/v1", api_key=key(server, "thrift"), max_retries=0
    )
    seen = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="big", messages=MSG, max_tokens=10
        )  # type: ignore[arg-type]
        seen.append((raw.headers["x-governd-decision"], raw.headers.get("x-governd-degraded")))
    assert seen == [("allow", None), ("allow", None), ("degrade", "big->small")]
    entry = AdminClient(server.url, ADMIN).call(
        "GET", f"/admin/v1/ledger/{raw.headers['x-governd-request-id']}"
    )
    assert entry["served_model"] == "small"
    assert "priority lowered" in entry["reasons"] and "priority:batch" in entry["reasons"]
