"""Resources, prompts, completions and log levels of upstream MCP servers, through /mcp.

Tools are governed action by action (``mcp_gateway.py``); what a server offers
to read — resources, resource templates, prompts — is passed through to every
authenticated principal: listed from every live server, read from the server
that offers it. A prompt is named like a tool (``<server>__<prompt>``, or its
own name for a server offered unprefixed); a resource by its URI, which
already says whose it is. A log level set by a client is set on every server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from governd.execution.mcp_upstream import McpUnavailable, McpUpstream
from governd.governance import tools

_NOT_FOUND = -32002  # MCP's "resource not found"


class McpContent:
    """The handlers of the MCP methods that read what upstream servers offer."""

    def __init__(
        self, upstreams: dict[str, McpUpstream], unprefixed: Callable[[], set[str]]
    ) -> None:
        self._upstreams = upstreams
        self._unprefixed = unprefixed
        #: Where each URI and prompt was last listed: the server to ask for it.
        self._uris: dict[str, str] = {}
        self._prompts: dict[str, tuple[str, str]] = {}

    def handlers(self) -> dict[str, Any]:
        """The lowlevel ``Server``'s ``on_*`` arguments."""
        return {
            "on_list_resources": self.list_resources,
            "on_list_resource_templates": self.list_templates,
            "on_read_resource": self.read_resource,
            "on_subscribe_resource": self.subscribe,
            "on_unsubscribe_resource": self.unsubscribe,
            "on_list_prompts": self.list_prompts,
            "on_get_prompt": self.get_prompt,
            "on_completion": self.complete,
            "on_set_logging_level": self.set_level,
        }

    async def _from_all(self, method: str) -> list[tuple[str, Any]]:
        """``method`` of every live server (one page each), with the server's name."""
        names = list(self._upstreams)
        found = await asyncio.gather(
            *(self._upstreams[n].forward(method) for n in names), return_exceptions=True
        )
        return [(n, r) for n, r in zip(names, found, strict=True) if not isinstance(r, Exception)]

    async def list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        out = []
        for server, page in await self._from_all("list_resources"):
            for resource in page.resources:
                self._uris[str(resource.uri)] = server
                out.append(resource)
        return types.ListResourcesResult(resources=out)

    async def list_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        out = [
            t
            for _, page in await self._from_all("list_resource_templates")
            for t in page.resource_templates
        ]
        return types.ListResourceTemplatesResult(resource_templates=out)

    async def read_resource(
        self, ctx: Any, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        result: types.ReadResourceResult = await self._by_uri(str(params.uri), "read_resource")
        return result

    async def subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        await self._by_uri(str(params.uri), "subscribe_resource")
        return types.EmptyResult()

    async def unsubscribe(
        self, ctx: Any, params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        await self._by_uri(str(params.uri), "unsubscribe_resource")
        return types.EmptyResult()

    async def _by_uri(self, uri: str, method: str) -> Any:
        """Ask the server that listed ``uri``; one not listed (a template's), each in turn."""
        known = self._uris.get(uri)
        order = [known] if known else list(self._upstreams)
        last: Exception | None = None
        for server in order:
            try:
                return await self._upstreams[server].forward(method, uri)
            except (MCPError, McpUnavailable) as exc:
                last = exc
        if isinstance(last, MCPError):
            raise last
        raise MCPError(_NOT_FOUND, f"no server offers resource {uri}", {"uri": uri})

    async def list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        unprefixed = self._unprefixed()
        out = []
        for server, page in await self._from_all("list_prompts"):
            for prompt in page.prompts:
                shown = (
                    prompt.name if server in unprefixed else tools.namespaced(server, prompt.name)
                )
                self._prompts[shown] = (server, prompt.name)
                out.append(prompt.model_copy(update={"name": shown}))
        return types.ListPromptsResult(prompts=out)

    async def get_prompt(
        self, ctx: Any, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        server, name = self.prompt_at(params.name)
        result: types.GetPromptResult = await self._upstreams[server].forward(
            "get_prompt", name, params.arguments
        )
        return result

    def prompt_at(self, shown: str) -> tuple[str, str]:
        """The server and own name of a prompt as a client named it."""
        found = self._prompts.get(shown) or tools.split(shown)
        if found is None or found[0] not in self._upstreams:
            if len(self._upstreams) == 1:  # the only server: its own names
                return next(iter(self._upstreams)), shown
            raise MCPError(-32602, f"unknown prompt {shown!r}", {"name": shown})
        return found

    async def complete(self, ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        ref = params.ref
        if isinstance(ref, types.PromptReference):
            server, name = self.prompt_at(ref.name)
            ref = ref.model_copy(update={"name": name})
            upstream = self._upstreams[server]
        else:
            upstream = self._upstreams[self._uris.get(ref.uri, next(iter(self._upstreams)))]
        context = params.context.arguments if params.context is not None else None
        argument = {"name": params.argument.name, "value": params.argument.value}
        result: types.CompleteResult = await upstream.forward("complete", ref, argument, context)
        return result

    async def set_level(self, ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        await asyncio.gather(
            *(u.forward("set_logging_level", params.level) for u in self._upstreams.values()),
            return_exceptions=True,
        )
        return types.EmptyResult()
