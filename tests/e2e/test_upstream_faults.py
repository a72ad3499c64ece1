"""Retries, fallbacks, the breaker, broken and slow streams, timeouts, upstream refusals."""

from __future__ import annotations

import json

import openai
import pytest

from governd import tokens
from tests.conftest import FakeUpstreamProc, governd_cli
from tests.e2e.conftest import ADMIN, UPSTREAM_SECRET, Gateway

MSG = [{"role": "user", "content": "x"}]


def raw_chat(gateway: Gateway, model: str, **kw: object) -> tuple[str, object]:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model=model, messages=MSG, **kw
    )  # type: ignore[arg-type]
    return raw.headers["x-governd-request-id"], raw.parse()


def test_retries_5xx_before_first_byte(gateway: Gateway, fake_upstream: FakeUpstreamProc) -> None:
    rid, _ = raw_chat(gateway, "fake-flaky")
    assert fake_upstream.count("flaky:2") == 3
    entry = gateway.entry(rid)
    assert entry["status"] == 200 and entry["attempts"] == 3


def test_falls_back_to_another_alias(gateway: Gateway) -> None:
    rid, _ = raw_chat(gateway, "fake-fail-fallback")
    entry = gateway.entry(rid)
    assert entry["model"] == "fake-fail-fallback" and entry["served_model"] == "fake-ok"
    assert entry["attempts"] == 4


def test_connect_error_is_retried_then_falls_back(gateway: Gateway) -> None:
    rid, _ = raw_chat(gateway, "dead-fallback")
    entry = gateway.entry(rid)
    assert entry["served_model"] == "fake-ok" and entry["status"] == 200


def test_breaker_opens_and_stops_traffic(gateway: Gateway, fake_upstream: FakeUpstreamProc) -> None:
    with pytest.raises(openai.APIStatusError) as first:
        gateway.client().chat.completions.create(model="fake-fail", messages=MSG)  # type: ignore[arg-type]
    assert first.value.status_code == 502 and first.value.code == "upstream_error"
    failed = gateway.entry(first.value.response.headers["x-governd-request-id"])
    assert failed["attempts"] == 3, "every try is counted, the failed ones too"
    sent = fake_upstream.count("fail")
    with pytest.raises(openai.APIStatusError) as second:
        gateway.client().chat.completions.create(model="fake-fail", messages=MSG)  # type: ignore[arg-type]
    assert second.value.status_code == 503 and second.value.code == "upstream_unavailable"
    assert fake_upstream.count("fail") == sent


def test_slow_upstream_times_out_with_504(gateway: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="fake-slow", messages=MSG)  # type: ignore[arg-type]
    assert info.value.status_code == 504 and info.value.code == "upstream_timeout"
    entry = gateway.entry(info.value.response.headers["x-governd-request-id"])
    assert entry["status"] == 504 and entry["decision"] == "allow"


def test_broken_stream_ends_with_error_event_and_counts_what_was_streamed(gateway: Gateway) -> None:
    client = gateway.client()
    with client.chat.completions.with_streaming_response.create(
        model="fake-break",
        messages=MSG,
        stream=True,  # type: ignore[arg-type]
    ) as resp:
        rid = resp.headers["x-governd-request-id"]
        seen: list[str] = []
        with pytest.raises(openai.APIError) as info:
            for chunk in resp.parse():
                seen.extend(c.delta.content or "" for c in chunk.choices)
    assert "upstream" in info.value.message
    assert "".join(seen) == "Hello" + " world" * 3
    entry = gateway.entry(rid)
    assert entry["status"] == 502 and entry["usage_source"] == "counted"
    assert entry["output_tokens"] == 4
    assert entry["input_tokens"] == tokens.count_messages(MSG)


def test_stalled_stream_forwards_what_came_then_times_out(gateway: Gateway) -> None:
    stream = gateway.client().chat.completions.create(model="fake-stall", messages=MSG, stream=True)  # type: ignore[arg-type]
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.extend(c.delta.content or "" for c in chunk.choices)
    # The events sent before the upstream went silent reached the client (nothing is held back).
    assert "".join(seen) == "Hello world world"
    assert "stalled" in info.value.message


def streamed_chat(gateway: Gateway, model: str, **kw: object) -> str:
    """A streamed call read to its end; its request id."""
    with gateway.client().chat.completions.with_streaming_response.create(
        model=model,
        messages=MSG,
        stream=True,
        **kw,  # type: ignore[arg-type]
    ) as resp:
        list(resp.parse())
        return str(resp.headers["x-governd-request-id"])


def test_stream_without_upstream_usage_is_counted(gateway: Gateway) -> None:
    entry = gateway.entry(streamed_chat(gateway, "fake-nousage"))
    assert entry["usage_source"] == "counted" and entry["output_tokens"] == 9
    assert entry["status"] == 200


def test_non_stream_without_upstream_usage_is_counted(gateway: Gateway) -> None:
    rid, _ = raw_chat(gateway, "fake-nousage")
    entry = gateway.entry(rid)
    assert entry["usage_source"] == "counted" and entry["input_tokens"] == tokens.count_messages(
        MSG
    )


def test_upstream_4xx_is_passed_on_with_its_param(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="fake-reject", messages=MSG)  # type: ignore[arg-type]
    assert info.value.param == "max_tokens"


def test_upstream_credentials_never_reach_the_client(gateway: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="fake-badauth", messages=MSG)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert UPSTREAM_SECRET not in info.value.response.text
    assert UPSTREAM_SECRET not in gateway.served.output()


def test_a_200_that_is_not_json_is_a_failed_call_with_its_entry(gateway: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gateway.client().chat.completions.create(model="fake-garbage", messages=MSG)  # type: ignore[arg-type]
    assert info.value.status_code == 502 and info.value.code == "upstream_error"
    assert "not a JSON object" in info.value.message
    entry = gateway.entry(info.value.response.headers["x-governd-request-id"])
    assert entry["status"] == 502 and entry["error_code"] == "upstream_error"


def test_a_stream_cut_without_done_ends_with_an_error_event(gateway: Gateway) -> None:
    with gateway.client().chat.completions.with_streaming_response.create(
        model="fake-cut",
        messages=MSG,
        stream=True,  # type: ignore[arg-type]
    ) as resp:
        rid = resp.headers["x-governd-request-id"]
        with pytest.raises(openai.APIError, match="ended the stream early"):
            list(resp.parse())
    entry = gateway.entry(rid)
    assert entry["status"] == 502


@pytest.mark.parametrize("stream", [False, True])
def test_usage_whose_counts_are_strings_is_counted_instead(gateway: Gateway, stream: bool) -> None:
    if stream:
        rid = streamed_chat(gateway, "fake-strusage", stream_options={"include_usage": True})
    else:
        rid, _ = raw_chat(gateway, "fake-strusage")
    entry = gateway.entry(rid)
    assert entry["status"] == 200 and entry["usage_source"] == "counted"
    assert entry["output_tokens"] == 9 and entry["input_tokens"] == tokens.count_messages(MSG)
    assert float(str(entry["cost_usd"])) > 0


def test_an_upstream_4xx_echoing_the_credential_reaches_the_client_scrubbed(
    gateway: Gateway,
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.client().chat.completions.create(model="fake-echo", messages=MSG)  # type: ignore[arg-type]
    assert "unsupported header: [redacted]" in info.value.message
    assert UPSTREAM_SECRET not in info.value.response.text


def test_an_upstream_billing_past_the_bound_is_charged_shown_and_tripped(
    gateway: Gateway,
) -> None:
    budget = {"principal": "research", "unit": "usd", "period": "day", "limit": 1000.0}
    gateway.admin.call("PUT", "/admin/v1/budgets", budget)
    rid, _ = raw_chat(gateway, "fake-overbill", max_tokens=16)
    entry = gateway.entry(rid)
    assert entry["status"] == 200 and entry["error_code"] == "upstream_overbilled"
    assert entry["output_tokens"] == 100_000, "charged what the upstream reports"
    over = json.loads(str(entry["signals"]))["overbilled"]
    assert (over["bound"], over["reported"], over["deployment"]) == (
        16,
        100_000,
        "fake/overbill:100000",
    )
    assert over["overage_usd"] == pytest.approx((100_000 - 16) * 2.0 / 1e6)
    with pytest.raises(openai.APIStatusError) as tripped:
        raw_chat(gateway, "fake-overbill", max_tokens=16)
    assert tripped.value.status_code == 503, "out of rotation until an operator clears it"
    shown = governd_cli(gateway.url, ADMIN, "budgets", "show", "research")
    assert "OVERBILLED $0.2000" in shown.stdout, shown.stdout + shown.stderr
    explained = governd_cli(gateway.url, ADMIN, "explain", "research")
    assert "OVERBILLED by an upstream past its bound" in explained.stdout, explained.stdout
    listed = governd_cli(gateway.url, ADMIN, "deployments", "list")
    assert "fake/overbill:100000" in listed.stdout and "TRIPPED" in listed.stdout
    cleared = governd_cli(gateway.url, ADMIN, "deployments", "clear", "fake/overbill:100000")
    assert cleared.returncode == 0 and "back in rotation" in cleared.stdout, cleared.stderr
    again = governd_cli(gateway.url, ADMIN, "deployments", "clear", "fake/overbill:100000")
    assert again.returncode == 1 and "is not tripped" in again.stderr
    story = gateway.admin.call("GET", "/admin/v1/ledger", kind="control", limit=1000)["entries"]
    assert {"upstream_tripped", "upstream_cleared"} <= {e["operation"] for e in story}
