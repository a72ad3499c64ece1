"""A fake OpenAI-compatible model server whose behaviour is chosen by the model name.

Run it with ``python -m governd.testing.fake_upstream --port P``. Models:

    ok          a normal reply; streams honour ``stream_options.include_usage``
    nousage     no usage, streamed or not
    flaky:N     the first N requests get 503, then ``ok``
    fail        always 500
    slow:S      waits S seconds before answering
    break:K     streams K content events, then drops the connection
    stall:K     streams K content events, then goes silent
    reject      400 with an OpenAI error body
    badauth     401 whose message echoes the Authorization header it got
    echo        400 whose message echoes the Authorization header it got
    garbage     a 200 whose body is not JSON (streams: as ``ok``)
    cut         streams end cleanly without ``data: [DONE]`` (whole replies: as ``ok``)
    strusage    usage counts as strings (``"9"``, ``"lots"``)
    overbill:N  usage says N output tokens, whatever ``max_tokens`` was

Replies say "Hello" followed by " world" (one token each in o200k), so
counted usage can be checked exactly. ``GET /control/requests`` tells how many
requests each model got and the last body; ``POST /control/reset`` clears that.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

WORDS = 8


class FakeUpstream:
    """The server's state: request counts and the last request body."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last: dict[str, Any] = {}

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/control/requests", self.requests)
        app.router.add_post("/control/reset", self.reset)
        return app

    async def requests(self, request: web.Request) -> web.Response:
        return web.json_response({"count": dict(self.counts), "last": self.last})

    async def reset(self, request: web.Request) -> web.Response:
        self.counts.clear()
        self.last = {}
        return web.json_response({"ok": True})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "ok", "object": "model"}]})

    async def embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.counts[str(body.get("model"))] += 1
        self.last = body
        data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]
        usage = {"prompt_tokens": 5, "total_tokens": 5}
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = str(body.get("model"))
        self.counts[model] += 1
        self.last = body
        kind, _, arg = model.partition(":")
        if kind == "flaky" and self.counts[model] <= int(arg):
            return _error(503, "temporarily overloaded")
        if kind == "fail":
            return _error(500, "internal failure")
        if kind == "reject":
            return _error(400, "max_tokens is too large for this model", "max_tokens")
        if kind == "badauth":
            return _error(401, f"bad credentials: {request.headers.get('Authorization')}")
        if kind == "echo":
            return _error(400, f"unsupported header: {request.headers.get('Authorization')}")
        if kind == "garbage" and not body.get("stream"):
            return web.Response(status=200, text="<html>502 Bad Gateway</html>")
        if kind == "slow":
            await asyncio.sleep(float(arg))
        if body.get("stream"):
            return await self._stream(request, body, kind, arg)
        usage = None if kind == "nousage" else _usage(body, WORDS + 1, kind, arg)
        return web.json_response(_reply(body, usage))

    async def _stream(
        self, request: web.Request, body: dict[str, Any], kind: str, arg: str
    ) -> web.StreamResponse:
        words = int(arg) if arg.isdigit() else WORDS
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        chat = request.path.endswith("/chat/completions")
        pieces = ["Hello"] + [" world"] * (words if kind in ("break", "stall") else WORDS)
        for piece in pieces:
            await resp.write(_event(_chunk(body, piece, None, chat)))
        if kind == "break":
            assert request.transport is not None
            request.transport.abort()
            return resp
        if kind == "stall":
            await asyncio.sleep(3600)
        await resp.write(_event(_chunk(body, "", "stop", chat)))
        opts = body.get("stream_options") or {}
        if opts.get("include_usage") and kind != "nousage":
            usage_chunk = _chunk(body, None, None, chat)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(body, len(pieces), kind, arg)
            await resp.write(_event(usage_chunk))
        if kind != "cut":
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _error(status: int, message: str, param: str | None = None) -> web.Response:
    err = {
        "error": {"message": message, "type": "upstream_error", "code": str(status), "param": param}
    }
    return web.json_response(err, status=status)


def _usage(body: dict[str, Any], out: int, kind: str = "ok", arg: str = "") -> dict[str, Any]:
    prompt = 10 * len(body.get("messages") or [1])
    if kind == "strusage":
        return {"prompt_tokens": str(prompt), "completion_tokens": "lots", "total_tokens": "?"}
    if kind == "overbill":
        out = int(arg)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": out,
        "total_tokens": prompt + out,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _reply(body: dict[str, Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    text = "Hello" + " world" * WORDS
    message: dict[str, Any] = {"role": "assistant", "content": text}
    out: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if "prompt" in body:
        out["object"] = "text_completion"
        out["choices"] = [{"index": 0, "text": text, "finish_reason": "stop"}]
    if usage is not None:
        out["usage"] = usage
    return out


def _chunk(
    body: dict[str, Any], piece: str | None, finish: str | None, chat: bool
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {} if piece is None else {"content": piece}
    else:
        choice["text"] = piece or ""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [choice],
    }


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def main() -> None:
    """Serve on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(FakeUpstream().app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
