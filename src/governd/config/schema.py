"""The typed, frozen model of ``governd.yaml``: every section but agents' and compute's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, StringConstraints, model_validator

from governd.actions import Priority
from governd.config.agents import McpConfig, McpServerConfig, RunLimitsConfig, RunsConfig
from governd.config.base import StrictModel
from governd.config.compute import ComputeConfig
from governd.config.problems import ReferenceProblems
from governd.config.references import config_references
from governd.config.releases import ReleaseConfig
from governd.config.slos import AlertsConfig, SloConfig

_Model = StrictModel


class ServerConfig(_Model):
    """Where ``governd serve`` listens and how much it accepts."""

    host: str = "127.0.0.1"
    port: int = Field(8420, ge=1, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    public_metrics: bool = Field(False, description="serve /metrics without the admin key")
    auth_failures_per_minute: int = Field(
        120, ge=1, description="401s a client address may get a minute before it is refused (429)"
    )
    max_headers: int = Field(100, ge=8, description="request headers read; more get 431")


class SimUpstream(_Model):
    """An in-process simulated inference server (vLLM-like from outside)."""

    kind: Literal["sim"]
    prefill_tps: float = Field(20_000.0, gt=0, description="prompt tokens processed per second")
    decode_tps: float = Field(200.0, gt=0, description="output tokens per second per sequence")
    max_concurrency: int = Field(32, ge=1, description="sequences decoded at once; more wait")
    prefix_cache_tokens: int = Field(200_000, ge=0, description="prefix cache capacity")
    block_tokens: int = Field(16, ge=1, description="prefix cache block size")
    output_tokens: tuple[int, int] = Field((16, 96), description="range of reply lengths")
    embedding_dim: int = Field(256, ge=1)


HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[^\r\n]*$")]


class OpenAIUpstream(_Model):
    """Any OpenAI-compatible server: vLLM, SGLang, llama.cpp, Ollama, hosted APIs."""

    kind: Literal["openai"]
    base_url: str = Field(pattern=r"^https?://")
    api_key: SecretStr | None = None
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(120.0, gt=0)
    max_connections: int = Field(512, ge=1)
    #: Sent with every request; a name is an HTTP token and no value holds a line break.
    headers: dict[HeaderName, HeaderValue] = Field(default_factory=dict)


Upstream = Annotated[SimUpstream | OpenAIUpstream, Field(discriminator="kind")]


class Pricing(_Model):
    """USD per million tokens; cached input defaults to the input price."""

    input: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)
    output: float = Field(0.0, ge=0)


class Deployment(_Model):
    """One place a model alias can be served: an upstream and its model name there."""

    upstream: str
    model: str
    weight: float = Field(1.0, gt=0)
    pricing: Pricing | None = None
    max_in_flight: int | None = Field(
        None, ge=1, description="admission capacity; beyond it requests queue by priority"
    )


class ModelAlias(_Model):
    """A model name clients use, mapped to weighted deployments."""

    kind: Literal["chat", "embedding"] = "chat"
    deployments: list[Deployment] = Field(min_length=1)
    strategy: Literal["weighted", "least_in_flight"] = "weighted"
    fallbacks: list[str] = Field(default_factory=list)
    pricing: Pricing = Field(default_factory=Pricing)
    default_max_tokens: int = Field(1024, ge=1)
    degrade_to: str | None = Field(None, description="cheaper alias served when degraded")
    tokenizer: Literal["o200k_base"] | None = Field(
        None, description="declare when every deployment counts tokens with o200k (tighter bounds)"
    )


class PolicyConfig(_Model):
    """A CEL condition over the request's context and what to do when it holds."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    description: str | None = None
    when: str = Field(min_length=1, description="CEL over principal, request, budget, run, time")
    effect: Literal["allow", "deny", "degrade", "set", "require_approval"]
    mode: Literal["enforce", "shadow"] = "enforce"
    message: str | None = None
    degrade_to: str | None = Field(
        None, description="alias to serve (default: the model's degrade_to)"
    )
    set: dict[Literal["max_tokens"], int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _effect_fields(self) -> PolicyConfig:
        if self.effect == "set" and not self.set:
            raise ValueError("effect 'set' needs `set`, e.g. {max_tokens: 256}")
        if any(v < 1 for v in self.set.values()):
            raise ValueError("`set` values must be positive")
        return self


class RouterConfig(_Model):
    """Retries, and the circuit breaker each deployment has."""

    retries: int = Field(2, ge=0, le=10)
    breaker_failures: int = Field(5, ge=1)
    breaker_cooldown_s: float = Field(30.0, gt=0)
    shed_after_s: float = Field(
        2.0, gt=0, description="a sheddable request that would wait longer for capacity gets 503"
    )


#: What a budget counts: dollars, tokens (input + output), or accelerator device-hours.
BudgetUnit = Literal["usd", "tokens", "device_hours"]


class BudgetConfig(_Model):
    """A spending limit on a node for a calendar period; ``soft`` is the warning fraction."""

    unit: BudgetUnit
    period: Literal["hour", "day", "week", "month"]
    limit: float = Field(ge=0)
    soft: float | None = Field(None, gt=0, lt=1)


class RateLimitConfig(_Model):
    """Limits on a node's whole subtree: requests and tokens per minute, requests in flight."""

    rpm: int | None = Field(None, ge=1, description="requests per minute")
    tpm: int | None = Field(None, ge=1, description="input + output tokens per minute")
    concurrency: int | None = Field(None, ge=1, description="requests in flight at once")


class LadderConfig(_Model):
    """What a node's budgets do to its calls before the hard limit refuses them."""

    degrade: bool = Field(
        True, description="past a budget's soft threshold, serve the model's degrade_to"
    )
    lower_priority_at: float | None = Field(
        None, gt=0, le=1, description="past this fraction of a budget, one priority class lower"
    )


class NodeConfig(_Model):
    """What every node of the principal tree may carry."""

    models: list[str] | None = None
    budgets: list[BudgetConfig] = Field(default_factory=list)
    limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    priority: Priority | None = Field(None, description="default class below this node (inherited)")
    tools: list[str] | None = Field(
        None, description="MCP tools this node may use: `<server>__<tool>` names or glob patterns"
    )
    ladder: LadderConfig = Field(default_factory=LadderConfig)
    max_tokens: int | None = Field(None, ge=1, description="cap on a request's output tokens")
    run_limits: RunLimitsConfig = Field(
        default_factory=RunLimitsConfig, description="tighter limits for runs below this node"
    )

    @model_validator(mode="after")
    def _one_budget_per_unit_and_period(self) -> NodeConfig:
        seen = [(b.unit, b.period) for b in self.budgets]
        if len(seen) != len(set(seen)):
            raise ValueError("at most one budget per unit and period")
        return self


class ProjectConfig(NodeConfig):
    """A project under a team."""


class TeamConfig(NodeConfig):
    """A team under the org; ``models`` narrows what its keys may call."""

    projects: dict[str, ProjectConfig] = Field(default_factory=dict)


class PrincipalsConfig(NodeConfig):
    """The org > team > project tree that every limit and budget hangs on."""

    org: str = Field("default", pattern=r"^[A-Za-z0-9_.-]+$")
    teams: dict[str, TeamConfig] = Field(default_factory=dict)

    def walk(self) -> Iterator[TreeNode]:
        """Every node of the tree, the org first, each team before its projects."""
        yield TreeNode(self.org, ("principals",), self)
        for tname, team in self.teams.items():
            at = ("principals", "teams", tname)
            yield TreeNode(f"{self.org}/{tname}", at, team)
            for pname, proj in team.projects.items():
                yield TreeNode(f"{self.org}/{tname}/{pname}", (*at, "projects", pname), proj)


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A node of the principal tree: its path (``org/team``), where the config declares it."""

    path: str
    declared_at: tuple[str, ...]
    config: NodeConfig


class ForecastConfig(_Model):
    """Budget-burn forecasts: each USD and token budget's exhaustion, from its recent burn."""

    action: Literal["off", "warn", "degrade", "lower_priority"] = Field(
        "warn",
        description="when a budget would run out before its period ends: record it (warn), "
        "serve its node's calls by their degrade_to, or run them at batch priority",
    )
    lookback_s: float = Field(3600.0, gt=0, description="the recent burn a forecast extrapolates")
    every_s: float = Field(30.0, gt=0, description="seconds between forecasts")
    min_elapsed_s: float = Field(
        300.0, ge=0, description="no forecast this early in a period (too little to go on)"
    )


class SizingConfig(_Model):
    """Holds sized from recorded outputs for streamed calls on budgets that afford few calls."""

    enabled: bool = True
    quantile: float = Field(
        0.5, gt=0, lt=1, description="of recorded output tokens: the hold's output part"
    )
    min_samples: int = Field(20, ge=1, description="outputs recorded before a size is trusted")
    tight_calls: int = Field(
        100, ge=1, description="a budget affording fewer worst-case calls than this is sized"
    )
    step_tokens: int = Field(16, ge=1, description="how much a stream's hold grows at a time")


class GovernanceConfig(_Model):
    """Plane-wide governance settings."""

    timezone: str = "UTC"
    default_effect: Literal["allow", "deny"] = Field(
        "allow", description="deny: a request needs an `allow` policy to pass"
    )
    approval_timeout_s: float = Field(
        300.0, gt=0, description="how long a call waits for a human's approval before it is refused"
    )
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    sizing: SizingConfig = Field(default_factory=SizingConfig)
    tokenizer: Literal["o200k_base", "bytes"] = Field(
        "o200k_base",
        description="how prompts are counted before a call: o200k_base (exact for OpenAI's "
        "models; ~143 MB of memory) or bytes (UTF-8 bytes: never under a byte-level BPE's "
        "count, no tables in memory, holds ~4x larger)",
    )

    @model_validator(mode="after")
    def _known_timezone(self) -> GovernanceConfig:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        return self


class LedgerConfig(_Model):
    """How entries reach storage, and how the record is made tamper-evident."""

    durability: Literal["strict", "batched"] = "batched"
    flush_ms: int = Field(50, ge=1, le=10_000)
    max_pending: int = Field(
        100_000,
        ge=1,
        description="entries queued before requests wait for the store (backpressure)",
    )
    signing_key: str | None = Field(
        None, description="Ed25519 PEM file signing checkpoints; default: beside a SQLite ledger"
    )
    checkpoint_every: int = Field(1000, ge=1, description="entries between signed checkpoints")
    checkpoint_s: float = Field(
        10.0, gt=0, description="seconds between checkpoints while entries arrive"
    )
    trusted_keys: list[str] = Field(
        default_factory=list,
        description="hex Ed25519 public keys audits accept (past keys after a rotation)",
    )


class ObserveConfig(_Model):
    """Where traces and SLO alerts go (metrics are always at /metrics)."""

    otlp_endpoint: str | None = Field(
        None,
        pattern=r"^(https?://.+)?$",
        description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces; empty: no traces",
    )
    service_name: str = "governd"
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)


class GovernConfig(_Model):
    """The whole of ``governd.yaml``."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    admin_key: SecretStr | None = None
    storage: str = "sqlite:///governd.db"
    state: str = Field(
        "memory",
        pattern=r"^(memory|redis://.+|rediss://.+)$",
        description="live counters (budgets): in this process, or Redis shared by replicas",
    )
    principals: PrincipalsConfig = Field(default_factory=PrincipalsConfig)
    upstreams: dict[str, Upstream] = Field(default_factory=dict)
    models: dict[str, ModelAlias] = Field(default_factory=dict)
    router: RouterConfig = Field(default_factory=RouterConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    policies: list[PolicyConfig] = Field(default_factory=list)
    mcp_servers: dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$")], McpServerConfig
    ] = Field(
        default_factory=dict, description="names may not contain `__`, the namespace separator"
    )
    mcp: McpConfig = Field(default_factory=McpConfig)
    runs: RunsConfig = Field(default_factory=RunsConfig)
    observe: ObserveConfig = Field(default_factory=ObserveConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)
    slos: list[SloConfig] = Field(default_factory=list)
    releases: list[ReleaseConfig] = Field(
        default_factory=list, description="model releases, started with `governd releases start`"
    )

    @model_validator(mode="after")
    def _references(self) -> GovernConfig:
        problems = config_references(self)
        if problems:
            raise ReferenceProblems(problems)
        return self
