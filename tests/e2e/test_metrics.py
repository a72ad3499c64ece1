"""/metrics: Prometheus text that prometheus_client parses, moving with the traffic."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ADMIN, Gateway


def scrape(gateway: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    req = urllib.request.Request(
        gateway.url + "/metrics", headers={"authorization": f"Bearer {ADMIN}"}
    )
    with urllib.request.urlopen(req) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all((k, labels[k]) in ls for k in labels)
    )


def test_metrics_move_with_traffic(gateway: Gateway) -> None:
    before = scrape(gateway)
    reply = gateway.client().chat.completions.create(
        model="chat-sim", messages=[{"role": "user", "content": "m"}]
    )
    after = scrape(gateway)
    who = {"principal": "acme/research/agents", "model": "chat-sim"}
    assert (
        value(after, "governd_requests_total", **who, status="200")
        - value(before, "governd_requests_total", **who, status="200")
        == 1
    )
    assert reply.usage is not None
    out = value(after, "governd_tokens_total", **who, type="output") - value(
        before, "governd_tokens_total", **who, type="output"
    )
    assert out == reply.usage.completion_tokens
    assert value(after, "governd_cost_usd_total", **who) > value(
        before, "governd_cost_usd_total", **who
    )
    assert value(after, "governd_request_duration_seconds_count", model="chat-sim") > value(
        before, "governd_request_duration_seconds_count", model="chat-sim"
    )
    assert value(after, "governd_decisions_total", effect="allow") > 0
    assert ("governd_ledger_lag", ()) in after
    assert value(after, "governd_in_flight", model="chat-sim") == 0


def test_metrics_need_the_admin_key(gateway: Gateway) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(gateway.url + "/metrics")
    assert info.value.code == 401
