"""Every class of bad input gets its 4xx envelope and a ledger entry; nothing reaches upstream."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from tests.conftest import FakeUpstreamProc
from tests.e2e.conftest import Gateway


def post(
    gateway: Gateway, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any], Any]:
    req = urllib.request.Request(gateway.url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def auth(gateway: Gateway, who: str = "research/agents") -> dict[str, str]:
    return {"authorization": f"Bearer {gateway.keys[who]}", "content-type": "application/json"}


CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "x"}]

BAD_INPUT = [
    pytest.param(b"{not json", 400, "invalid_request_error", None, id="invalid-json"),
    pytest.param(b"[1, 2]", 400, "invalid_request_error", None, id="not-an-object"),
    pytest.param(b"", 400, "invalid_request_error", None, id="empty-body"),
    pytest.param(
        json.dumps({"messages": MSG}).encode(), 400, "invalid_request_error", "model", id="no-model"
    ),
    pytest.param(
        json.dumps({"model": "chat-sim"}).encode(),
        400,
        "invalid_request_error",
        "messages",
        id="no-messages",
    ),
    pytest.param(
        json.dumps({"model": "chat-sim", "messages": []}).encode(),
        400,
        "invalid_request_error",
        "messages",
        id="empty-messages",
    ),
    pytest.param(
        json.dumps(
            {"model": "chat-sim", "messages": [{"role": "wizard", "content": "x"}]}
        ).encode(),
        400,
        "invalid_request_error",
        "messages[0].role",
        id="bad-role",
    ),
    pytest.param(
        json.dumps({"model": "chat-sim", "messages": MSG, "max_tokens": -1}).encode(),
        400,
        "invalid_request_error",
        "max_tokens",
        id="negative-max-tokens",
    ),
    pytest.param(
        json.dumps({"model": "chat-sim", "messages": MSG, "stream": "yes"}).encode(),
        400,
        "invalid_request_error",
        "stream",
        id="stream-not-bool",
    ),
    pytest.param(
        json.dumps({"model": "chat-sim", "messages": MSG, "temperature": 9}).encode(),
        400,
        "invalid_request_error",
        "temperature",
        id="temperature-out-of-range",
    ),
    pytest.param(
        json.dumps({"model": 42, "messages": MSG}).encode(),
        400,
        "invalid_request_error",
        "model",
        id="model-not-string",
    ),
    pytest.param(
        json.dumps({"model": "nope", "messages": MSG}).encode(),
        404,
        "model_not_found",
        "model",
        id="unknown-model",
    ),
    pytest.param(
        json.dumps({"model": "embed-sim", "messages": MSG}).encode(),
        400,
        "invalid_request_error",
        "model",
        id="embedding-model-for-chat",
    ),
    pytest.param(
        json.dumps(
            {"model": "chat-sim", "messages": [{"role": "user", "content": "x" * 70000}]}
        ).encode(),
        413,
        "request_too_large",
        None,
        id="too-large",
    ),
    pytest.param(  # nesting past 1,024 levels: refused by the parser, never a RecursionError
        b'{"model": "chat-sim", "messages": [], "metadata": ' + b"[" * 1100 + b"]" * 1100 + b"}",
        400,
        "invalid_request_error",
        None,
        id="nested-too-deep",
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "param"), BAD_INPUT)
def test_bad_input_gets_its_envelope_and_an_entry(
    gateway: Gateway, body: bytes, status: int, code: str, param: str | None
) -> None:
    got, headers, data = post(gateway, CHAT, body, auth(gateway))
    assert got == status
    assert set(data["error"]) == {"message", "type", "code", "param"}
    assert data["error"]["code"] == code
    assert data["error"]["param"] == param
    assert "Traceback" not in data["error"]["message"]
    entry = gateway.entry(headers["x-governd-request-id"])
    assert entry["status"] == status and entry["error_code"] == code
    assert entry["decision"] == "deny" and entry["principal"] == "acme/research/agents"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Basic Zm9vOmJhcg==", id="wrong-scheme"),
        pytest.param("Bearer gvd-unknown-key", id="unknown-key"),
        pytest.param("Bearer ", id="empty-token"),
    ],
)
def test_bad_credentials_get_401(gateway: Gateway, header: str | None) -> None:
    headers = {"content-type": "application/json"}
    if header:
        headers["authorization"] = header
    status, got, data = post(
        gateway, CHAT, json.dumps({"model": "chat-sim", "messages": MSG}).encode(), headers
    )
    assert status == 401 and data["error"]["code"] == "invalid_api_key"
    entry = gateway.entry(got["x-governd-request-id"])
    assert entry["status"] == 401 and entry["principal"] == ""


def test_revoked_and_expired_keys_get_401(gateway: Gateway) -> None:
    made = gateway.admin.call("POST", "/admin/v1/keys", {"principal": "research", "name": "short"})
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=made["key"], max_retries=0)
    client.models.list()
    gateway.admin.call("DELETE", f"/admin/v1/keys/{made['id']}")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    listed = gateway.admin.call("GET", "/admin/v1/keys", principal="research")["keys"]
    assert any(k["id"] == made["id"] and k["revoked_at"] for k in listed)
    assert all("key" not in k and "hash" not in k for k in listed)


def test_expired_key_gets_401(gateway: Gateway) -> None:
    # A key whose lifetime is shorter than the time taken to use it.
    made = gateway.admin.call(
        "POST", "/admin/v1/keys", {"principal": "research", "expires": "0.001s"}
    )
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=made["key"], max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.models.list()
    assert "expired" in info.value.message


def test_policy_denies_model_outside_allow_list(
    gateway: Gateway, fake_upstream: FakeUpstreamProc
) -> None:
    before = fake_upstream.count("ok")
    with pytest.raises(openai.PermissionDeniedError) as info:
        gateway.client("support").chat.completions.create(model="fake-ok", messages=MSG)  # type: ignore[arg-type]
    assert info.value.code == "policy_denied"
    assert "model_access" in info.value.message
    assert fake_upstream.count("ok") == before
    rid = info.value.response.headers["x-governd-request-id"]
    assert info.value.response.headers["x-governd-decision"] == "deny"
    assert gateway.entry(rid)["decision"] == "deny"


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/v1/nope", 404, None),
        ("GET", "/v1/chat/completions", 405, {"POST"}),
        ("DELETE", "/v1/models", 405, {"GET", "HEAD"}),
        ("DELETE", "/admin/v1/keys", 405, {"GET", "HEAD", "POST"}),  # two handlers, one path
    ],
)
def test_unknown_routes_and_methods_get_envelopes(
    gateway: Gateway, method: str, path: str, status: int, allow: set[str] | None
) -> None:
    req = urllib.request.Request(gateway.url + path, method=method)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == status
    assert "error" in json.loads(info.value.read())
    assert allow is None or set(info.value.headers["allow"].split(", ")) == allow


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"authorization": "Bearer wrong"}, 401)],
)
def test_admin_api_needs_the_admin_key(
    gateway: Gateway, headers: dict[str, str], status: int
) -> None:
    req = urllib.request.Request(gateway.url + "/admin/v1/keys", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == status


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"principal": "nosuchteam"}, "principal"),
        ({"principal": "research/nope"}, "principal"),
        ({}, "principal"),
        ({"principal": "research", "expires": "soon"}, "expires"),
    ],
)
def test_admin_key_creation_rejects_bad_input(
    gateway: Gateway, body: dict[str, str], param: str
) -> None:
    status, _, data = post(
        gateway,
        "/admin/v1/keys",
        json.dumps(body).encode(),
        {"authorization": "Bearer adm-e2e-secret"},
    )
    assert status == 400 and data["error"]["param"] == param


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=%C2%B2", "limit"),  # a digit to Unicode, not to int()
        ("after=36893488147419103233", "after"),  # past a 64-bit integer (fuzzing found a 500)
        ("order=null", "order"),
    ],
)
def test_admin_ledger_rejects_bad_filters(gateway: Gateway, query: str, param: str) -> None:
    req = urllib.request.Request(
        gateway.url + "/admin/v1/ledger?" + query,
        headers={"authorization": "Bearer adm-e2e-secret"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 400 and json.loads(info.value.read())["error"]["param"] == param


def test_client_leaving_mid_request_is_recorded_quietly(gateway: Gateway) -> None:
    port = int(gateway.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + f"authorization: Bearer {gateway.keys['research/agents']}\r\n".encode()
            + b'content-length: 1000\r\n\r\n{"model": '
        )
    deadline = time.monotonic() + 20
    while True:  # the server records the entry once it notices the client has gone
        entries = gateway.admin.call("GET", "/admin/v1/ledger", order="desc", limit=20)["entries"]
        wait = [
            e for e in entries if e["error_code"] == "client_disconnected" and e["status"] == 499
        ]
        if wait or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert wait and wait[0]["principal"] == "acme/research/agents"
    assert "Traceback" not in gateway.served.output()
