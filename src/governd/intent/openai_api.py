"""The OpenAI-compatible API: chat, completions, embeddings, models.

Each handler only translates: HTTP request -> ``Action`` -> pipeline -> HTTP
reply. Every request gets exactly one ledger entry, refused ones included.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.actions import PRIORITIES, Action, Operation, Principal
from governd.errors import GovernError, InvalidRequest, ModelNotFound
from governd.ids import new_id
from governd.intent.auth import bearer
from governd.intent.http import (
    EventStream,
    SettledAfter,
    error_response,
    json_response,
    read_json,
    run_id_of,
)
from governd.intent.validation import validate
from governd.pipeline.model_calls import ModelCall, ModelCalls

if TYPE_CHECKING:
    from governd.config import GovernConfig
    from governd.governance.keys import KeyRing
    from governd.governance.principals import PrincipalTree
    from governd.ledger.writer import LedgerWriter

PRIORITY_HEADER = "x-governd-priority"


class OpenAIRoutes:
    """Handlers of ``/v1``."""

    def __init__(
        self,
        *,
        config: GovernConfig,
        keyring: KeyRing,
        model_calls: ModelCalls,
        tree: PrincipalTree,
        writer: LedgerWriter,
    ) -> None:
        self._config = config
        self._keyring = keyring
        self._calls = model_calls
        self._tree = tree
        self._writer = writer

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/models/{model:path}", self.model, methods=["GET"]),
        ]

    async def chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        return await self._governed(request, "chat")

    async def completions(self, request: Request) -> Response:
        """``POST /v1/completions``."""
        return await self._governed(request, "completion")

    async def embeddings(self, request: Request) -> Response:
        """``POST /v1/embeddings``."""
        return await self._governed(request, "embedding")

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: only the models the key may use."""
        principal = await self._keyring.authenticate(bearer(request))
        allowed = self._tree.models_for(principal)
        data = [_model(name) for name in self._config.models if name in allowed]
        return json_response({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        """``GET /v1/models/{model}``: the model, if the key may use it (else 404, as OpenAI)."""
        principal = await self._keyring.authenticate(bearer(request))
        name = request.path_params["model"]
        if name not in self._config.models or name not in self._tree.models_for(principal):
            raise ModelNotFound(f"The model '{name}' does not exist", param="model")
        return json_response(_model(name))

    async def _governed(self, request: Request, operation: Operation) -> Response:
        calls = self._calls
        started = calls.clock.monotonic()
        rid = new_id("req_")
        headers = {"x-governd-request-id": rid}
        principal: Principal | None = None
        data: dict[str, Any] = {}
        try:
            principal = await self._keyring.authenticate(bearer(request))
            data = await read_json(request, self._config.server.max_body_bytes)
            action = _action(rid, operation, principal, data, request.headers)
        except GovernError as err:
            model = data.get("model")
            refused = Action(
                rid,
                operation,
                principal or Principal(""),
                model if isinstance(model, str) else "",
                {},
            )
            await calls.reject(refused, err, started)
            return error_response(err, {**headers, "x-governd-decision": "deny"})
        try:
            call = await calls.begin(action)
        except GovernError as err:
            effect = err.decision.effect if err.decision else "deny"
            return error_response(err, {**headers, "x-governd-decision": effect})
        decision = call.decision
        headers["x-governd-decision"] = decision.effect if decision else "allow"
        if decision is not None and decision.effect == "degrade":
            headers["x-governd-degraded"] = f"{action.model}->{decision.model}"
        if action.stream:
            return EventStream(_sse(call), headers)  # type: ignore[return-value]
        headers["x-governd-cost-usd"] = f"{call.cost:.8f}"
        if not self._writer.strict:
            return SettledAfter(call.body, headers, partial(call.finish, None))  # type: ignore[return-value]
        async with call:  # strict durability: the entry is on disk before the reply leaves
            return Response(call.body, 200, headers=headers, media_type="application/json")


def _action(
    rid: str, operation: Operation, principal: Principal, data: dict[str, Any], headers: Headers
) -> Action:
    req = validate(operation, data)
    run_id = run_id_of(headers)
    priority = headers.get(PRIORITY_HEADER)
    if priority is not None and priority not in PRIORITIES:
        raise InvalidRequest(f"{PRIORITY_HEADER} must be one of {', '.join(PRIORITIES)}")
    stream = bool(getattr(req, "stream", False))
    opts = getattr(req, "stream_options", None)
    return Action(
        id=rid,
        operation=operation,
        principal=principal,
        model=str(req.model),
        body=data,
        stream=stream,
        run_id=run_id,
        include_usage=bool(opts and opts.include_usage),
        priority=priority,
    )


async def _sse(call: ModelCall) -> AsyncGenerator[bytes, None]:
    async with call:
        async for chunk in call.stream():
            yield chunk


def _model(name: str) -> dict[str, Any]:
    """A model alias as OpenAI's model object."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "governd"}
