"""The OpenAPI 3.1 document of the admin API (``GET /admin/v1/openapi.json``).

One table, ``OPERATIONS``, names every admin operation with its query
parameters and body; bodies that a pydantic model checks take their schema
from the model, so the document says what the server enforces. A test holds
the table to the routes the server really has, both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from governd import __version__
from governd.config.releases import ReleaseConfig
from governd.intent.budgets_api import BudgetChange
from governd.intent.faults_api import FaultsChange
from governd.intent.validation import JobRequest

_TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
_BY: dict[str, Any] = {"type": "object", "properties": {"by": _TEXT}}

_ANY: dict[str, Any] = {"type": "string"}
#: Query parameters, by name: the same name means the same thing on every path (empty: absent).
QUERY: dict[str, tuple[dict[str, Any], str]] = {
    "principal": (_ANY, "TEAM[/PROJECT], the org, or a key id: that subtree only"),
    "since": (_ANY, "how far back: a duration (90m, 24h, 7d) or an RFC 3339 time"),
    "limit": ({"type": "integer", "minimum": 1}, "at most this many"),
    "after": ({"type": "integer", "minimum": 0, "maximum": 2**63 - 1}, "the `next` of a page"),
    "order": ({"enum": ["asc", "desc"]}, "oldest (asc) or newest (desc) first"),
    "run": (_ANY, "one agent run"),
    "model": (_ANY, "one model alias or tool"),
    "decision": (_ANY, "allow, deny, require_approval, ..."),
    "status": (_ANY, "one status (jobs: also `active`)"),
    "by": (_ANY, "who acts (recorded)"),
}


@dataclass(frozen=True, slots=True)
class Op:
    """One admin operation."""

    method: str
    path: str
    summary: str
    query: tuple[str, ...] = ()
    body: dict[str, Any] | None = None
    created: bool = False
    #: The most ``limit`` may ask for.
    most: int = 1000


def _object(required: tuple[str, ...], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


#: Schemas the models' schemas refer to, kept in the document's components.
_DEFS: dict[str, Any] = {}


def _model(model: type[BaseModel], **extra: dict[str, Any]) -> dict[str, Any]:
    """A model's schema (its references into the components), with ``extra`` properties."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _DEFS.update(schema.pop("$defs", {}))
    return {**schema, "properties": {**schema["properties"], **extra}}


_FILTERS = ("principal", "since")
_BUDGET = _model(BudgetChange)
_FAULTS = _model(FaultsChange)
_ACT = _object((), by=_TEXT, full={"type": "boolean"}, reason={"type": "string"})

OPERATIONS: tuple[Op, ...] = (
    Op("GET", "/admin/v1/openapi.json", "This document"),
    Op(
        "POST",
        "/admin/v1/keys",
        "Create a key (shown once)",
        body=_object(("principal",), principal=_TEXT, name=_TEXT, expires=_TEXT),
        created=True,
    ),
    Op("GET", "/admin/v1/keys", "Key records (never keys)", ("principal",)),
    Op("DELETE", "/admin/v1/keys/{key_id}", "Revoke a key at once"),
    Op(
        "GET",
        "/admin/v1/ledger",
        "Ledger entries, filtered and paged",
        (*_FILTERS, "limit", "after", "order", "run", "model", "decision"),
    ),
    Op(
        "GET", "/admin/v1/ledger/summary", "Per principal: requests, tokens, cost, errors", _FILTERS
    ),
    Op("GET", "/admin/v1/ledger/{entry_id}", "One entry by its request id"),
    Op("GET", "/admin/v1/capacity", "Per model: slots, in use, waiting"),
    Op("GET", "/admin/v1/usage", "Per principal and hour: requests, tokens, cost", _FILTERS),
    Op("GET", "/admin/v1/approvals", "Approvals", ("status", "principal", "since")),
    Op("POST", "/admin/v1/approvals/{approval_id}/approve", "Approve a held action", body=_BY),
    Op("POST", "/admin/v1/approvals/{approval_id}/deny", "Deny a held action", body=_BY),
    Op("GET", "/admin/v1/budgets", "Budgets with spend and holds", ("principal",)),
    Op("PUT", "/admin/v1/budgets", "Set a budget", body=_BUDGET),
    Op("POST", "/admin/v1/budgets", "Set a budget", body=_BUDGET),
    Op("GET", "/admin/v1/tools", "MCP tools with tier and pin"),
    Op("POST", "/admin/v1/tools/{name}/approve", "Approve a quarantined tool", body=_BY),
    Op("GET", "/admin/v1/runs", "Agent runs", ("limit",)),
    Op("GET", "/admin/v1/runs/{run_id}", "A run's timeline", ("limit", "after"), most=10_000),
    Op("GET", "/admin/v1/slos", "SLOs with error budgets and burn"),
    Op("GET", "/admin/v1/slos/{name}", "One SLO", ("limit",), most=500),
    Op("GET", "/admin/v1/explain/{principal}", "Why a principal's calls are decided as they are"),
    Op("GET", "/admin/v1/deployments", "Deployments: breakers, trips"),
    Op("GET", "/admin/v1/upstreams/{name}/faults", "A sim upstream's injected faults"),
    Op("PUT", "/admin/v1/upstreams/{name}/faults", "Inject faults", body=_FAULTS),
    Op("POST", "/admin/v1/upstreams/{name}/faults", "Inject faults", body=_FAULTS),
    Op("POST", "/admin/v1/deployments/{name}/clear", "Clear a tripped deployment", ("by",)),
    Op("POST", "/admin/v1/jobs", "Submit a job", body=_model(JobRequest), created=True),
    Op("GET", "/admin/v1/jobs", "Jobs, newest first", ("limit", "principal", "status")),
    Op("GET", "/admin/v1/jobs/{job_id}", "One job with its events"),
    Op("POST", "/admin/v1/jobs/{job_id}/cancel", "Cancel a job"),
    Op("GET", "/admin/v1/jobs/{job_id}/logs", "A job's output (last 4 MiB)"),
    Op("GET", "/admin/v1/compute", "Queues, device units, and which replica schedules"),
    Op("GET", "/admin/v1/releases", "Releases"),
    Op(
        "POST",
        "/admin/v1/releases",
        "Create a release",
        body=_model(ReleaseConfig, by=_TEXT),
        created=True,
    ),
    Op(
        "POST",
        "/admin/v1/releases/kill",
        "Abort every release of a model",
        body=_object(("model",), model=_TEXT, by=_TEXT, reason={"type": "string"}),
    ),
    Op("GET", "/admin/v1/releases/{name}", "One release"),
    Op("GET", "/admin/v1/releases/{name}/history", "A release's changes", ("limit",)),
    Op(
        "POST",
        "/admin/v1/releases/{name}/{action}",
        "start, pause, resume, promote, abort",
        body=_ACT,
    ),
)

_ENVELOPE = _object(
    ("error",),
    error=_object(
        ("message", "type", "code", "param"),
        message={"type": "string"},
        type={"type": "string"},
        code={"type": "string"},
        param={"type": ["string", "null"]},
    ),
)
_PATH_ENUMS = {"action": {"enum": ["start", "pause", "resume", "promote", "abort"]}}


def document() -> dict[str, Any]:
    """The whole document."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "governd admin API", "version": __version__},
        "security": [{"admin": []}],
        "components": {
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": _ENVELOPE, **_DEFS},
        },
        "paths": paths,
    }


def _operation(op: Op) -> dict[str, Any]:
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _PATH_ENUMS.get(name, {"type": "string", "minLength": 1}),
        }
        for name in _path_names(op.path)
    ] + [
        {
            "name": name,
            "in": "query",
            "schema": {**QUERY[name][0], "maximum": op.most} if name == "limit" else QUERY[name][0],
            "description": QUERY[name][1],
        }
        for name in op.query
    ]
    ok = {"description": "done", "content": {"application/json": {"schema": {"type": "object"}}}}
    error = {
        "description": "refused or failed (the error envelope)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    out: dict[str, Any] = {
        "operationId": f"{op.method.lower()}{op.path.replace('/admin/v1', '')}",
        "summary": op.summary,
        "parameters": params,
        "responses": {"201" if op.created else "200": ok, "default": error},
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": bool(op.body.get("required")),
            "content": {"application/json": {"schema": op.body}},
        }
    return out


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
