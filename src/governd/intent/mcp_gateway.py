"""The MCP gateway at ``/mcp`` (streamable HTTP, official SDK's low-level server).

It offers the tools of every configured upstream MCP server as
``<server>__<tool>``, lists to each principal only the tools its allow-lists
let through, checks arguments against the tool's input schema, and sends every
call through the pipeline (policies, the ledger). Callers authenticate with a
governd key. Refusals and failures are JSON-RPC errors whose ``data.code`` is
governd's error code:

    -32602  invalid params: unknown tool, arguments that do not fit the schema
    -32001  refused by policy (policy_denied, approval_required)
    -32002  a rate limit or budget refused it
    -32003  the upstream server is unavailable or too slow
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from governd import __version__
from governd.actions import Action, Principal
from governd.errors import GovernError, InvalidRequest, ToolQuarantined
from governd.execution.mcp_upstream import McpUpstream
from governd.governance import pinning, tools
from governd.ids import new_id
from governd.intent.auth import bearer
from governd.intent.http import error_response, json_response, read_json, run_id_of
from governd.intent.mcp_content import McpContent
from governd.intent.mcp_relay import ClientRelay
from governd.pipeline.entries import ToolTarget

if TYPE_CHECKING:
    from governd.clock import Clock
    from governd.config import GovernConfig
    from governd.governance.keys import KeyRing
    from governd.governance.principals import PrincipalTree
    from governd.ledger.storage import Storage
    from governd.pipeline.recorder import Recorder
    from governd.pipeline.tool_calls import ToolCalls

_SESSION_HEADER = "mcp-session-id"
_PRINCIPAL = "governd.principal"


@dataclass(frozen=True, slots=True)
class Offered:
    """A tool as governd offers it (``quarantined``: why it is withheld, if it is)."""

    server: str
    tool: types.Tool
    tier: str
    quarantined: str | None = None


def _code(exc: GovernError) -> int:
    if isinstance(exc, InvalidRequest):
        return types.INVALID_PARAMS
    if exc.status == 403:
        return -32001
    if exc.status == 429:
        return -32002
    return -32003


class McpGateway:
    """The MCP server governd runs, and the ASGI endpoint that puts it at /mcp."""

    def __init__(
        self,
        *,
        clock: Clock,
        config: GovernConfig,
        keyring: KeyRing,
        tool_calls: ToolCalls,
        recorder: Recorder,
        storage: Storage,
        tree: PrincipalTree,
    ) -> None:
        self._clock = clock
        self._config = config
        self._keyring = keyring
        self._tool_calls = tool_calls
        self._storage = storage
        self._tree = tree
        self.upstreams = {name: McpUpstream(name, cfg) for name, cfg in config.mcp_servers.items()}
        self._catalog: dict[str, Offered] = {}
        #: The name a client sees for each tool (its own, for a server offered unprefixed), and
        #: back; the ledger, policies, pins and allow-lists always use ``<server>__<tool>``.
        self._shown: dict[str, str] = {}
        self._by_shown: dict[str, str] = {}
        self._down: set[str] = set()
        self._listed_at = float("-inf")
        self.content = McpContent(self.upstreams, self._unprefixed)
        self.server: Server[Any] = Server(
            "governd",
            version=__version__,
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            **self.content.handlers(),
        )
        host = config.server.host
        security = (
            TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
            if host in ("127.0.0.1", "localhost", "::1")
            else None
        )
        pins = {
            tools.namespaced(server, tool): spec.pin
            for server, cfg in config.mcp_servers.items()
            for tool, spec in cfg.tools.items()
            if spec.pin
        }
        self.pins = pinning.ToolPins(
            storage,
            clock,
            pins,
            lambda op, tool, detail: recorder.record_control("", op, detail),
        )
        self.sessions = StreamableHTTPSessionManager(app=self.server, security_settings=security)
        self._asgi = StreamableHTTPASGIApp(self.sessions)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI: authenticate the governd key, then hand the request to the MCP server."""
        request = Request(scope, receive)
        try:
            principal = await self._keyring.authenticate(bearer(request))
        except GovernError as err:
            await error_response(err)(scope, receive, send)
            return
        scope.setdefault("state", {})[_PRINCIPAL] = principal
        await self._asgi(scope, receive, send)

    def admin_routes(self, check: Callable[[Request], None]) -> list[Route]:
        """``/admin/v1/tools``: every tool with its tier and pin, and re-approval of quarantined ones."""

        async def listing(request: Request) -> Response:
            check(request)
            catalog = await self.current(refresh=True)
            pins = self.pins.pins()
            rows = [
                {
                    "name": name,
                    "server": o.server,
                    "tier": o.tier,
                    "status": "down"
                    if o.server in self._down
                    else pins.get(name, {}).get("status", "pinned"),
                    "reason": o.quarantined,
                    "digest": pins.get(name, {}).get("digest"),
                }
                for name, o in sorted(catalog.items())
            ]
            return json_response({"tools": rows})

        async def approve(request: Request) -> Response:
            check(request)
            body = (
                await read_json(request, 16 * 1024)
                if request.headers.get("content-length") not in (None, "0")
                else {}
            )
            given = body.get("by")
            by = given if isinstance(given, str) and given else "admin"
            pin = await self.pins.approve(request.path_params["name"], by)
            await self.current(refresh=True)
            return json_response(pin)

        return [
            Route("/admin/v1/tools", listing, methods=["GET"]),
            Route("/admin/v1/tools/{name}/approve", approve, methods=["POST"]),
        ]

    async def aclose(self) -> None:
        """Close every upstream session."""
        await asyncio.gather(*(u.aclose() for u in self.upstreams.values()))

    async def current(self, refresh: bool = False) -> dict[str, Offered]:
        """The catalog, listed again when older than ``mcp.catalog_ttl_s`` (or when asked)."""
        age = self._clock.monotonic() - self._listed_at
        if refresh or age >= self._config.mcp.catalog_ttl_s or not self._catalog:
            await self.catalog()
        return self._catalog

    async def catalog(self) -> dict[str, Offered]:
        """Every upstream's tools now, by namespaced name.

        A server that is down keeps its last known tools for calls (which then
        fail as unavailable, not as unknown) and is left out of listings.
        """
        names = list(self.upstreams)
        found = await asyncio.gather(
            *(self.upstreams[n].list_tools() for n in names), return_exceptions=True
        )
        catalog: dict[str, Offered] = {}
        down: set[str] = set()
        for name, listed in zip(names, found, strict=True):
            if isinstance(listed, BaseException):
                down.add(name)
                catalog.update({k: v for k, v in self._catalog.items() if v.server == name})
                continue
            configured = self._config.mcp_servers[name].tools
            for tool in listed:
                notes = (
                    tool.annotations.model_dump(by_alias=True, exclude_none=True)
                    if tool.annotations
                    else None
                )
                override = configured.get(tool.name)
                tier = tools.risk_tier(override.tier if override else None, notes)
                ns = tools.namespaced(name, tool.name)
                digest = pinning.tool_digest(ns, tool.description, tool.input_schema)
                held = await self.pins.check(ns, digest, tool.description)
                catalog[ns] = Offered(name, tool, tier, held)
        self._catalog, self._down = catalog, down
        self._shown = shown_names(catalog, self._unprefixed())
        self._by_shown = {shown: ns for ns, shown in self._shown.items()}
        self._listed_at = self._clock.monotonic()
        return catalog

    def _unprefixed(self) -> set[str]:
        """Servers whose tools keep their own names: asked (``prefix: false``), or the only one."""
        servers = self._config.mcp_servers
        return {
            name
            for name, cfg in servers.items()
            if (cfg.prefix is False) or (cfg.prefix is None and len(servers) == 1)
        }

    def canonical(self, name: str) -> str:
        """The ``<server>__<tool>`` name of a tool as a client named it."""
        return self._by_shown.get(name, name)

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        # The SDK checks Mcp-Param-* headers with this before each call; without it, it
        # runs the whole tools/list handler per call (a third of a call's CPU here).
        offered = self._catalog.get(self.canonical(name))
        return offered.tool.input_schema if offered is not None else None

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal = _principal(ctx)
        lists = self._tree.tool_lists(principal)
        visible = [
            offered.tool.model_copy(update={"name": self._shown.get(name, name)})
            for name, offered in (await self.current()).items()
            if offered.server not in self._down
            and offered.quarantined is None
            and tools.allowed(lists, name)
        ]
        return types.ListToolsResult(tools=visible)

    async def _call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        principal = _principal(ctx)
        run = _run(ctx)
        arguments = dict(params.arguments or {})
        await self.current()
        name = self.canonical(params.name)
        action = Action(
            new_id("tool_"), "tool", principal, name, arguments, run_id=run, kind="tool_call"
        )
        offered = self._catalog.get(name) or (await self.current(True)).get(
            self.canonical(params.name)
        )
        if offered is None:
            return await self._refuse(
                action,
                ToolTarget("", "", None),
                InvalidRequest(f"unknown tool {params.name!r}", param="name"),
            )
        target = ToolTarget(
            offered.server,
            offered.tool.name,
            offered.tier,
            self._config.mcp_servers[offered.server].tools.get(offered.tool.name),
        )
        if offered.quarantined is not None:
            return await self._refuse(
                action,
                target,
                ToolQuarantined(
                    f"tool {params.name} is quarantined: {offered.quarantined}; an admin can approve it "
                    f"with `governd tools approve {params.name}`"
                ),
            )
        problem = _schema_problem(offered.tool.input_schema, arguments)
        if problem is not None:
            return await self._refuse(
                action, target, InvalidRequest(f"invalid arguments for {params.name}: {problem}")
            )
        try:
            upstream = self.upstreams[offered.server]
            return await self._tool_calls.call(action, upstream, target, ClientRelay(ctx))
        except GovernError as exc:
            raise MCPError(_code(exc), exc.message, {"code": exc.code}) from None

    async def _refuse(
        self, action: Action, target: ToolTarget, error: GovernError
    ) -> types.CallToolResult:
        await self._tool_calls.refuse(action, target, error)
        raise MCPError(_code(error), error.message, {"code": error.code})


def _principal(ctx: Any) -> Principal:
    state = ctx.request.scope.get("state", {}) if ctx.request is not None else {}
    principal = state.get(_PRINCIPAL)
    if not isinstance(principal, Principal):
        raise MCPError(-32001, "not authenticated", {"code": "invalid_api_key"})
    return principal


def _run(ctx: Any) -> str | None:
    """The call's run: ``x-governd-run`` if sent, else the MCP session (each session is a run)."""
    if ctx.request is None:
        return None
    try:
        named = run_id_of(ctx.request.headers)
    except InvalidRequest as exc:
        raise MCPError(types.INVALID_PARAMS, exc.message, {"code": exc.code}) from None
    session = ctx.request.headers.get(_SESSION_HEADER)
    return named or (f"mcp-{session}" if session else None)


def _schema_problem(schema: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    """Why ``arguments`` do not fit the tool's JSON schema (the first reason), or None."""
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
    except jsonschema.SchemaError:
        return None  # the server's schema is broken: let the server judge
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


def shown_names(catalog: dict[str, Offered], unprefixed: set[str]) -> dict[str, str]:
    """The name each tool is listed under: its own for a server in ``unprefixed`` unless two
    such tools share it (then both keep ``<server>__<tool>``)."""
    own = [o.tool.name for o in catalog.values() if o.server in unprefixed]
    return {
        ns: o.tool.name if o.server in unprefixed and own.count(o.tool.name) == 1 else ns
        for ns, o in catalog.items()
    }
