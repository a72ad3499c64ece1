"""HTTP plumbing of the intent plane: bounded body reading, JSON replies, the error envelope."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from governd.errors import (
    ClientDisconnected,
    GovernError,
    InvalidRequest,
    NotFound,
    RequestTooLarge,
)

log = logging.getLogger("governd.http")

RUN_HEADER = "x-governd-run"
_MAX_RUN_ID = 128


def run_id_of(headers: Mapping[str, str]) -> str | None:
    """The run a request belongs to (``x-governd-run``), checked; None when it names none."""
    run_id = headers.get(RUN_HEADER)
    if run_id is not None and (len(run_id) > _MAX_RUN_ID or not run_id.isprintable()):
        raise InvalidRequest(
            f"{RUN_HEADER} must be at most {_MAX_RUN_ID} printable characters", param=RUN_HEADER
        )
    return run_id or None


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON reply serialised with orjson."""
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def error_response(err: GovernError, headers: Mapping[str, str] | None = None) -> Response:
    """The OpenAI error envelope for ``err``, with ``Retry-After`` when it has one."""
    out = dict(headers or {})
    if err.retry_after is not None:
        out["retry-after"] = str(max(1, round(err.retry_after + 0.4999)))
    return json_response(err.envelope(), err.status, out)


async def read_json(request: Request, limit: int, empty_ok: bool = False) -> dict[str, Any]:
    """The request's JSON object; a clear 4xx for a body too large, not JSON, or not an object.

    ``empty_ok``: no body at all reads as ``{}`` (commands whose options are all optional).
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("invalid Content-Length header")
        if int(declared) > limit:
            raise RequestTooLarge(f"request body exceeds the limit of {limit} bytes")
    try:
        body = await _body(request, limit)
    except ClientDisconnect:
        raise ClientDisconnected(
            "client closed the connection before sending its request"
        ) from None
    if not body:
        if empty_ok:
            return {}
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"request body is not valid JSON: {exc.msg} at position {exc.pos}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


async def _body(request: Request, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise RequestTooLarge(f"request body exceeds the limit of {limit} bytes")
        parts.append(part)
    return b"".join(parts)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in the OpenAI envelope."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: GovernError = NotFound(f"no route {request.method} {request.url.path}")
    else:
        err = InvalidRequest(str(exc.detail), status=exc.status_code)
    return error_response(err, exc.headers)


async def on_govern_error(request: Request, exc: Exception) -> Response:
    """Any ``GovernError`` that reached the edge."""
    assert isinstance(exc, GovernError)
    return error_response(exc)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: log it whole, tell the client only that it happened."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(GovernError("internal error"))


class EventStream:
    """A ``text/event-stream`` reply that stops as soon as the client goes away.

    Starlette's StreamingResponse watches for disconnects with an anyio task
    group per response; one asyncio task that cancels the stream does the same
    for a fraction of the CPU. Cancelling matters: it stops the upstream
    generating tokens nobody will read, and the call settles as disconnected.
    """

    def __init__(self, body: AsyncGenerator[bytes, None], headers: Mapping[str, str]) -> None:
        self._body = body
        self._headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            *_raw_headers(headers),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        state = {"done": False, "gone": False}

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not state["done"] and task is not None:
                state["gone"] = True
                task.cancel()

        watcher = asyncio.ensure_future(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state["gone"] or task is None:
                raise
            task.uncancel()
        finally:
            state["done"] = True
            watcher.cancel()
            await self._body.aclose()


def _raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class SettledAfter:
    """A whole JSON reply whose bookkeeping runs after its last byte is handed to the socket.

    ``then`` (settling the call: ledger entry, releases) runs in the same task
    before it next yields, so no request the client sends after reading the
    reply is handled before the entry is appended; the client just does not
    wait for it.
    """

    def __init__(
        self, body: bytes, headers: Mapping[str, str], then: Callable[[], Awaitable[None]]
    ) -> None:
        self._body = body
        self._then = then
        self._headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            *_raw_headers(headers),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers})
            await send({"type": "http.response.body", "body": self._body})
        finally:
            await self._then()
