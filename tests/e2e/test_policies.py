"""CEL policies through the real server: deny, degrade, set, shadow."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import FakeUpstreamProc
from tests.e2e.conftest import Gateway

MSG = [{"role": "user", "content": "hello"}]


def test_policy_deny_names_the_policy_and_reaches_no_upstream(
    gateway: Gateway, fake_upstream: FakeUpstreamProc
) -> None:
    before = fake_upstream.count("ok")
    with pytest.raises(openai.PermissionDeniedError) as info:
        gateway.client().chat.completions.create(model="fake-ok", messages=MSG, user="blocked")  # type: ignore[arg-type]
    assert info.value.code == "policy_denied" and "block-user" in info.value.message
    assert "this user is blocked" in info.value.message
    assert fake_upstream.count("ok") == before
    entry = gateway.entry(info.value.response.headers["x-governd-request-id"])
    assert entry["decision"] == "deny" and entry["reasons"].startswith("policy:block-user")


def test_degrade_serves_the_cheaper_model_and_says_so(gateway: Gateway) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="fake-ok",
        messages=MSG,
        user="thrifty",  # type: ignore[arg-type]
    )
    assert raw.headers["x-governd-decision"] == "degrade"
    assert raw.headers["x-governd-degraded"] == "fake-ok->chat-sim"
    assert "simulated" in (raw.parse().choices[0].message.content or "")
    entry = gateway.entry(raw.headers["x-governd-request-id"])
    assert (entry["model"], entry["served_model"], entry["decision"]) == (
        "fake-ok",
        "chat-sim",
        "degrade",
    )


def test_set_caps_max_tokens_on_the_upstream_request(gateway: Gateway) -> None:
    reply = gateway.client().chat.completions.create(
        model="chat-sim", messages=MSG, max_tokens=50, user="brief"
    )  # type: ignore[arg-type]
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_shadow_policy_is_recorded_not_enforced(gateway: Gateway) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="chat-sim", messages=MSG, user="watched"
    )  # type: ignore[arg-type]
    assert raw.headers["x-governd-decision"] == "allow"
    assert gateway.entry(raw.headers["x-governd-request-id"])["reasons"] == "shadow:watch-user=deny"
