"""The edge: a source that keeps failing to authenticate is braked; too many headers get 431."""

from __future__ import annotations

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from governd.intent.edge import Edge


async def guarded(request: Request) -> JSONResponse:
    ok = request.headers.get("authorization") == "Bearer good"
    return JSONResponse({}, status_code=200 if ok else 401)


def client(source: str = "10.0.0.1", per_minute: int = 5) -> httpx2.AsyncClient:
    app = Starlette(
        routes=[Route("/", guarded)],
        middleware=[Middleware(Edge, failures_per_minute=per_minute, max_headers=40)],
    )
    transport = httpx2.ASGITransport(app=app, client=(source, 1234))
    return httpx2.AsyncClient(transport=transport, base_url="http://edge")


async def test_a_source_failing_past_its_burst_is_refused_even_with_a_good_key() -> None:
    async with client() as edge:
        codes = [
            (await edge.get("/", headers={"authorization": "Bearer bad"})).status_code
            for _ in range(6)
        ]
        assert codes == [401] * 6  # a minute's burst of failures is let through
        braked = await edge.get("/", headers={"authorization": "Bearer good"})
    assert braked.status_code == 429
    assert braked.json()["error"]["code"] == "too_many_auth_failures"
    assert int(braked.headers["retry-after"]) >= 1


async def test_good_keys_never_count_against_a_source() -> None:
    async with client() as edge:
        codes = {
            (await edge.get("/", headers={"authorization": "Bearer good"})).status_code
            for _ in range(50)
        }
    assert codes == {200}


@pytest.mark.parametrize(("headers", "status"), [(20, 200), (45, 431)])
async def test_too_many_headers_get_431(headers: int, status: int) -> None:
    extra = {f"x-h{i}": "v" for i in range(headers)}
    async with client() as edge:
        reply = await edge.get("/", headers={"authorization": "Bearer good", **extra})
    assert reply.status_code == status
