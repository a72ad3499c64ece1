"""The agent part of ``governd.yaml``: MCP servers, their tools, and agent runs.

``GovernConfig`` includes these sections (``mcp_servers``, ``mcp``, ``runs``)
and ``run_limits`` on every node.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from governd.actions import RiskEvent, RiskTier, SideEffect
from governd.config.base import StrictModel

DEFAULT_WEIGHTS: dict[RiskEvent, float] = {
    "denied": 1.0,  # a call refused by policy or an allow-list
    "approval_denied": 2.0,  # a human said no
    "destructive": 1.0,  # any attempt at a destructive-tier tool
    "quarantined": 3.0,  # a call to a tool withheld after a change or an injection hit
    "injection": 5.0,  # a tool's result reads like instructions to the model
    "run_limit": 0.0,  # the run ran into one of its own limits
    "invalid": 0.0,  # arguments that do not fit the tool's schema, an unknown tool
}


class ToolConfig(StrictModel):
    """What governd knows about one upstream tool beyond what the server says."""

    tier: RiskTier | None = Field(None, description="overrides the tool's MCP annotations")
    pin: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="the digest the tool must have (else quarantined)",
    )
    target: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        description="dotted path of the argument naming what the call acts on (recorded in clear)",
    )
    reveal: list[str] = Field(
        default_factory=list, description="arguments recorded in clear; every other value redacted"
    )
    side_effect: SideEffect | None = Field(None, description="overrides the class the tier implies")


class McpServerConfig(StrictModel):
    """An upstream MCP server whose tools governd offers at /mcp (as ``<server>__<tool>``, or
    under their own names: ``prefix``)."""

    transport: Literal["stdio", "http"]
    command: str | None = Field(None, description="stdio: the program to start")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = Field(
        None, pattern=r"^https?://", description="http: the streamable HTTP endpoint"
    )
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(30.0, gt=0, description="longest a tool call may take")
    tools: dict[str, ToolConfig] = Field(default_factory=dict)
    prefix: bool | None = Field(
        None,
        description="list tools as `<server>__<tool>` (default: unless it is the only server)",
    )

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError("stdio needs `command`")
        if self.transport == "http" and not self.url:
            raise ValueError("http needs `url`")
        return self


class McpConfig(StrictModel):
    """The MCP gateway's own settings."""

    catalog_ttl_s: float = Field(
        5.0, ge=0, description="how long a listing of the upstreams' tools is reused"
    )


class RunLimitsConfig(StrictModel):
    """Limits on one agent run: every action that carries the same run id."""

    steps: int | None = Field(None, ge=1, description="model and tool calls admitted")
    tool_calls: int | None = Field(None, ge=1, description="tool calls admitted")
    usd: float | None = Field(None, gt=0, description="what the run's calls may cost")
    wall_s: float | None = Field(None, gt=0, description="seconds from the run's first action")


class RiskLevelConfig(StrictModel):
    """What a run may still do once its risk score reaches ``at``."""

    at: float = Field(gt=0, description="the risk score from which this level applies")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    tiers: dict[RiskTier, Literal["require_approval", "deny"]] = Field(
        default_factory=dict, description="tool tiers that now need approval, or are disabled"
    )
    stop: bool = Field(False, description="refuse every further action of the run")


class RunRiskConfig(StrictModel):
    """How a run's risk score accumulates and what each level of it tightens."""

    weights: dict[RiskEvent, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    levels: list[RiskLevelConfig] = Field(default_factory=list)

    @field_validator("weights")
    @classmethod
    def _every_event_weighed(cls, weights: dict[RiskEvent, float]) -> dict[RiskEvent, float]:
        if any(w < 0 for w in weights.values()):
            raise ValueError("weights cannot be negative")
        return {**DEFAULT_WEIGHTS, **weights}

    @field_validator("levels")
    @classmethod
    def _ascending(cls, levels: list[RiskLevelConfig]) -> list[RiskLevelConfig]:
        scores = [level.at for level in levels]
        if scores != sorted(set(scores)):
            raise ValueError("levels must have distinct `at` scores in ascending order")
        names = [level.name for level in levels]
        if len(names) != len(set(names)):
            raise ValueError("level names must be distinct")
        return levels


class RunsConfig(StrictModel):
    """Agent runs: limits every run has, risk escalation, and how long run state is kept."""

    limits: RunLimitsConfig = Field(default_factory=RunLimitsConfig)
    risk: RunRiskConfig = Field(default_factory=RunRiskConfig)
    idle_ttl_s: float = Field(
        7 * 86_400.0, gt=0, description="how long a run's live state outlives its last action"
    )
