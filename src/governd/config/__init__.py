"""``governd.yaml`` as one typed, frozen model: its schema, loader, cross-references and CEL environment.

The sections live in ``schema`` (most), ``agents`` (MCP servers, runs) and
``compute`` (accelerators, queues); ``loader`` parses a file and reports every
problem with its dotted path and line; ``references`` checks names that point
across sections; ``cel_env`` is the environment policies are written in.
"""

from __future__ import annotations

from governd.config.loader import (
    default_config_text,
    load_config,
    parse_config,
    resolve_storage,
)
from governd.config.problems import (
    ConfigError,
    ConfigProblem,
    ReferenceProblems,
)
from governd.config.schema import (
    BudgetConfig,
    BudgetUnit,
    Deployment,
    GovernanceConfig,
    GovernConfig,
    HeaderName,
    HeaderValue,
    LadderConfig,
    LedgerConfig,
    ModelAlias,
    NodeConfig,
    ObserveConfig,
    OpenAIUpstream,
    PolicyConfig,
    Pricing,
    PrincipalsConfig,
    ProjectConfig,
    RateLimitConfig,
    RouterConfig,
    ServerConfig,
    SimUpstream,
    TeamConfig,
    TreeNode,
    Upstream,
)

__all__ = [
    "BudgetConfig",
    "BudgetUnit",
    "ConfigError",
    "ConfigProblem",
    "Deployment",
    "GovernConfig",
    "GovernanceConfig",
    "HeaderName",
    "HeaderValue",
    "LadderConfig",
    "LedgerConfig",
    "ModelAlias",
    "NodeConfig",
    "ObserveConfig",
    "OpenAIUpstream",
    "PolicyConfig",
    "Pricing",
    "PrincipalsConfig",
    "ProjectConfig",
    "RateLimitConfig",
    "ReferenceProblems",
    "RouterConfig",
    "ServerConfig",
    "SimUpstream",
    "TeamConfig",
    "TreeNode",
    "Upstream",
    "default_config_text",
    "load_config",
    "parse_config",
    "resolve_storage",
]
