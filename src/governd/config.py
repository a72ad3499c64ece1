"""One typed, frozen model of ``governd.yaml``: load -> interpolate -> defaults -> validate.

Every error names its dotted path and the line it sits on, and all of them are
reported at once. Environment variables override the file: ``GOVERND_STORAGE``
replaces ``storage``, ``GOVERND_ADMIN_KEY`` replaces ``admin_key``,
``GOVERND_STATE`` replaces ``state``. Relative
paths in a file resolve against that file's folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, SecretStr, StringConstraints, ValidationError, model_validator

from governd import cel_env
from governd.config_agents import (
    McpConfig,
    McpServerConfig,
    RunLimitsConfig,
    RunsConfig,
    StrictModel,
)
from governd.config_compute import ComputeConfig
from governd.errors import GovernError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


_Model = StrictModel


class ServerConfig(_Model):
    """Where ``governd serve`` listens and how much it accepts."""

    host: str = "127.0.0.1"
    port: int = Field(8420, ge=1, le=65535)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    public_metrics: bool = Field(False, description="serve /metrics without the admin key")


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


Priority = Literal["critical", "standard", "batch", "sheddable"]
PRIORITIES: tuple[Priority, ...] = ("critical", "standard", "batch", "sheddable")


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


class GovernanceConfig(_Model):
    """Plane-wide governance settings."""

    timezone: str = "UTC"
    default_effect: Literal["allow", "deny"] = Field(
        "allow", description="deny: a request needs an `allow` policy to pass"
    )
    approval_timeout_s: float = Field(
        300.0, gt=0, description="how long a call waits for a human's approval before it is refused"
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
    """Where traces go (metrics are always at /metrics)."""

    otlp_endpoint: str | None = Field(
        None,
        pattern=r"^(https?://.+)?$",
        description="OTLP/HTTP traces endpoint, e.g. http://127.0.0.1:4318/v1/traces; empty: no traces",
    )
    service_name: str = "governd"


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

    @model_validator(mode="after")
    def _references(self) -> GovernConfig:
        problems = list(_reference_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _reference_problems(cfg: GovernConfig) -> list[str]:
    out: list[str] = []
    for alias, model in cfg.models.items():
        for i, dep in enumerate(model.deployments):
            if dep.upstream not in cfg.upstreams:
                out.append(
                    f"models.{alias}.deployments.{i}.upstream: unknown upstream {dep.upstream!r}"
                )
        for i, fb in enumerate(model.fallbacks):
            if fb == alias or fb not in cfg.models:
                out.append(f"models.{alias}.fallbacks.{i}: {fb!r} is not another model alias")
        if model.degrade_to is not None and (
            model.degrade_to == alias or model.degrade_to not in cfg.models
        ):
            out.append(
                f"models.{alias}.degrade_to: {model.degrade_to!r} is not another model alias"
            )
    ids = [p.id for p in cfg.policies]
    for i, pol in enumerate(cfg.policies):
        why = cel_env.problem(pol.when)
        if why is not None:
            out.append(f"policies.{i}.when: policy {pol.id!r}: {why.replace('; ', ', ')}")
        if ids.index(pol.id) != i:
            out.append(f"policies.{i}.id: duplicate policy id {pol.id!r}")
        if pol.degrade_to is not None and pol.degrade_to not in cfg.models:
            out.append(f"policies.{i}.degrade_to: unknown model {pol.degrade_to!r}")
    lists: list[tuple[str, list[str] | None]] = [("principals.models", cfg.principals.models)]
    for tname, team in cfg.principals.teams.items():
        lists.append((f"principals.teams.{tname}.models", team.models))
        for pname, proj in team.projects.items():
            lists.append((f"principals.teams.{tname}.projects.{pname}.models", proj.models))
    for where, names in lists:
        for i, name in enumerate(names or []):
            if name not in cfg.models:
                out.append(f"{where}.{i}: unknown model {name!r}")
    return out


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '<root>'}: {self.message}"


class ConfigError(GovernError):
    """A config file that cannot be used; ``problems`` lists every error found."""

    code = "invalid_config"

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(str(p) for p in problems))


class _Lines:
    """Maps dotted paths of a YAML document to the line each value starts on."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, ...], int] = {}

    def line_of(self, loc: tuple[str, ...]) -> int | None:
        # Pydantic inserts union tags (e.g. "sim") into locations; skip parts
        # that are not keys of the document.
        best: int | None = self.lines.get(())
        path: tuple[str, ...] = ()
        for part in loc:
            if (*path, part) in self.lines:
                path = (*path, part)
                best = self.lines[path]
        return best


class _Builder:
    """Builds plain data from YAML nodes, recording each path's line and interpolating env."""

    def __init__(self) -> None:
        self.lines = _Lines()
        self.problems: list[ConfigProblem] = []
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: tuple[str, ...] = ()) -> Any:
        self.lines.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return {
                str(key.value): self.build(value, (*path, str(key.value)))
                for key, value in node.value
            }
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, str(i))) for i, child in enumerate(node.value)]
        value = self._scalars.construct_object(node, deep=True)
        if isinstance(value, str) and "${" in value:
            return _interpolate(value, path, self.lines, self.problems)
        return value


def _interpolate(
    value: str, path: tuple[str, ...], lines: _Lines, problems: list[ConfigProblem]
) -> str:
    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name, default)
        if found is None:
            problems.append(
                ConfigProblem(
                    ".".join(path),
                    lines.lines.get(path),
                    f"environment variable {name} is not set",
                )
            )
            return ""
        return found

    return _ENV_REF.sub(sub, value)


def parse_config(text: str, source: str = "<string>", base_dir: Path | None = None) -> GovernConfig:
    """Parse and validate config text; raise ``ConfigError`` listing every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(source, [ConfigProblem("", line, f"not valid YAML: {exc}")]) from None
    builder = _Builder()
    data = builder.build(root) if root is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigProblem("", 1, "the top level must be a mapping")])
    if builder.problems:
        raise ConfigError(source, builder.problems)
    lines = builder.lines
    _apply_env(data)
    try:
        cfg = GovernConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems_of(exc, lines)) from None
    updates: dict[str, Any] = {"storage": resolve_storage(cfg.storage, base_dir)}
    key = cfg.ledger.signing_key
    if key is not None and base_dir is not None and not Path(key).is_absolute():
        updates["ledger"] = cfg.ledger.model_copy(
            update={"signing_key": str((base_dir / key).resolve())}
        )
    logs = cfg.compute.log_dir
    if logs is not None and base_dir is not None and not Path(logs).is_absolute():
        updates["compute"] = cfg.compute.model_copy(
            update={"log_dir": str((base_dir / logs).resolve())}
        )
    return cfg.model_copy(update=updates)


def _problems_of(exc: ValidationError, lines: _Lines) -> list[ConfigProblem]:
    out = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "value_error" and ("models." in msg or "policies." in msg):
            # Cross-reference errors carry their own paths.
            for part in msg.removeprefix("Value error, ").split("; "):
                where, _, what = part.partition(": ")
                out.append(ConfigProblem(where, lines.line_of(tuple(where.split("."))), what))
            continue
        out.append(ConfigProblem(".".join(_drop_tags(loc)), lines.line_of(loc), msg))
    return out


def _drop_tags(loc: tuple[str, ...]) -> tuple[str, ...]:
    if len(loc) >= 3 and loc[0] == "upstreams" and loc[2] in ("sim", "openai"):
        return loc[:2] + loc[3:]
    return loc


def _apply_env(data: dict[str, Any]) -> None:
    if os.environ.get("GOVERND_STORAGE"):
        data["storage"] = os.environ["GOVERND_STORAGE"]
    if os.environ.get("GOVERND_ADMIN_KEY"):
        data["admin_key"] = os.environ["GOVERND_ADMIN_KEY"]
    if os.environ.get("GOVERND_STATE"):
        data["state"] = os.environ["GOVERND_STATE"]


def resolve_storage(storage: str, base_dir: Path | None) -> str:
    """Turn a relative SQLite path into an absolute one against the config's folder.

    ``postgresql://`` selects the psycopg driver (the ``postgres`` extra).
    """
    if "://" not in storage:
        storage = f"sqlite:///{storage}"
    if storage.startswith(("postgresql://", "postgres://")):
        storage = "postgresql+psycopg://" + storage.split("://", 1)[1]
    if storage.startswith("sqlite:///") and base_dir is not None:
        path = storage.removeprefix("sqlite:///")
        if path != ":memory:" and not Path(path).is_absolute():
            storage = f"sqlite:///{(base_dir / path).resolve()}"
    return storage


def default_config_text() -> str:
    """The embedded defaults: simulated upstreams, no setup needed."""
    return resources.files("governd").joinpath("defaults.yaml").read_text()


def load_config(path: str | Path | None = None) -> GovernConfig:
    """Load ``path``, else ``$GOVERND_CONFIG``, else the embedded defaults."""
    chosen = path or os.environ.get("GOVERND_CONFIG")
    if not chosen:
        return parse_config(default_config_text(), "<embedded defaults>", Path.cwd())
    file = Path(chosen)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(str(file), [ConfigProblem("", None, exc.strerror or str(exc))]) from None
    return parse_config(text, str(file), file.resolve().parent)
