"""MCP tools under governance: namespaced names, risk tiers, per-principal allow-lists.

A tool of upstream server ``files`` named ``delete`` is offered as
``files__delete``. Its risk tier comes from config, else from the tool's MCP
annotations, else ``destructive``: an unknown tool is assumed to be the most
dangerous kind (fail safe).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from governd.actions import RiskTier

SEPARATOR = "__"


def namespaced(server: str, tool: str) -> str:
    """The name governd offers a tool under."""
    return f"{server}{SEPARATOR}{tool}"


def split(name: str) -> tuple[str, str] | None:
    """``(server, tool)`` of a namespaced name, or None when it is not one."""
    server, sep, tool = name.partition(SEPARATOR)
    return (server, tool) if sep and server and tool else None


def risk_tier(configured: RiskTier | None, annotations: Mapping[str, Any] | None) -> RiskTier:
    """The tier: configured, else read from MCP annotations (their defaults per the spec), else destructive."""
    if configured is not None:
        return configured
    if not annotations:
        return "destructive"
    if annotations.get("readOnlyHint") is True:
        return "read"
    if annotations.get("destructiveHint", True) is not False:
        return "destructive"
    return "external" if annotations.get("openWorldHint", True) is not False else "write"


def allowed(patterns_on_path: list[list[str]], name: str) -> bool:
    """Whether every allow-list on the principal's path lets ``name`` through."""
    return all(any(fnmatch.fnmatchcase(name, p) for p in patterns) for patterns in patterns_on_path)
