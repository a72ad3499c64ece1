"""A real ``governd serve`` process in front of the sim and the fake upstream."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest

from governd.cli.admin_client import AdminClient
from governd.server.launcher import Served, free_port, governd_server
from tests.conftest import FakeUpstreamProc, entry_of, write_yaml

ADMIN = "adm-e2e-secret"
UPSTREAM_SECRET = "sk-upstream-secret-never-shown"

CONFIG = """
server: {{max_body_bytes: 65536}}
principals:
  org: acme
  teams:
    research:
      projects: {{agents: {{}}}}
    support:
      models: [chat-sim, embed-sim]
upstreams:
  sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000, max_concurrency: 64}}
  sim-slow: {{kind: sim, decode_tps: 20}}
  fake:
    kind: openai
    base_url: {fake}
    api_key: {secret}
    read_timeout_s: 1.0
  dead: {{kind: openai, base_url: "http://127.0.0.1:{dead_port}/v1", connect_timeout_s: 1}}
router: {{retries: 2, breaker_failures: 3, breaker_cooldown_s: 600}}
ledger: {{flush_ms: 5}}
policies:
  - {{id: block-user, when: 'request.user == "blocked"', effect: deny, message: this user is blocked}}
  - {{id: degrade-user, when: 'request.user == "thrifty"', effect: degrade, degrade_to: chat-sim}}
  - {{id: cap-user, when: 'request.user == "brief"', effect: set, set: {{max_tokens: 3}}}}
  - {{id: watch-user, when: 'request.user == "watched"', effect: deny, mode: shadow}}
models:
  chat-sim:
    deployments: [{{upstream: sim, model: sim-small}}]
    pricing: {{input: 1.0, cached_input: 0.5, output: 2.0}}
  chat-sim-slow:
    deployments: [{{upstream: sim-slow, model: sim-slow}}]
    pricing: {{input: 1.0, output: 2.0}}
  embed-sim:
    kind: embedding
    deployments: [{{upstream: sim, model: sim-embed}}]
    pricing: {{input: 0.1}}
  fake-ok:
    deployments: [{{upstream: fake, model: ok}}]
    pricing: {{input: 1.0, output: 2.0}}
  fake-nousage: {{deployments: [{{upstream: fake, model: nousage}}]}}
  fake-flaky: {{deployments: [{{upstream: fake, model: "flaky:2"}}]}}
  fake-fail-fallback:
    deployments: [{{upstream: fake, model: fail}}]
    fallbacks: [fake-ok]
  fake-fail: {{deployments: [{{upstream: fake, model: "fail"}}]}}
  dead-fallback:
    deployments: [{{upstream: dead, model: x}}]
    fallbacks: [fake-ok]
  fake-slow: {{deployments: [{{upstream: fake, model: "slow:3"}}]}}
  fake-break: {{deployments: [{{upstream: fake, model: "break:3"}}]}}
  fake-stall: {{deployments: [{{upstream: fake, model: "stall:2"}}]}}
  fake-reject: {{deployments: [{{upstream: fake, model: reject}}]}}
  fake-badauth: {{deployments: [{{upstream: fake, model: badauth}}]}}
  fake-echo: {{deployments: [{{upstream: fake, model: echo}}]}}
  fake-garbage: {{deployments: [{{upstream: fake, model: garbage}}]}}
  fake-cut: {{deployments: [{{upstream: fake, model: cut}}]}}
  fake-overbill:
    deployments: [{{upstream: fake, model: "overbill:100000"}}]
    pricing: {{input: 1.0, output: 2.0}}
  fake-strusage:
    deployments: [{{upstream: fake, model: strusage}}]
    pricing: {{input: 1.0, output: 2.0}}
"""


@dataclass
class Gateway:
    """A running gateway with an admin client and keys per principal."""

    served: Served
    admin: AdminClient
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return self.served.url

    def client(self, principal: str = "research/agents", **kw: object) -> openai.OpenAI:
        """An openai SDK client with that principal's key."""
        return openai.OpenAI(
            base_url=self.url + "/v1",
            api_key=self.keys[principal],
            max_retries=0,
            **kw,  # type: ignore[arg-type]
        )

    def entry(self, request_id: str, timeout: float = 20.0) -> dict[str, object]:
        """The ledger entry of a request, once the server has settled it."""
        return entry_of(self.admin, request_id, timeout)


@pytest.fixture(scope="session")
def gateway(
    fake_upstream: FakeUpstreamProc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One governd process for the whole e2e session."""
    tmp = tmp_path_factory.mktemp("gateway")
    cfg = write_yaml(
        tmp / "governd.yaml",
        CONFIG.format(fake=fake_upstream.base_url, secret=UPSTREAM_SECRET, dead_port=free_port()),
    )
    with governd_server(tmp, cfg, ADMIN) as served:
        admin = AdminClient(served.url, ADMIN)
        keys = {
            p: admin.call("POST", "/admin/v1/keys", {"principal": p})["key"]
            for p in ("research/agents", "research", "support")
        }
        yield Gateway(served, admin, keys)
