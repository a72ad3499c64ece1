"""One real OTLP/HTTP export: governd serve -> a receiver the test starts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from governd.cli.admin_client import AdminClient
from governd.server.launcher import free_port, governd_server
from tests.conftest import write_yaml


class Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        Receiver.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1/traces"
    server.shutdown()


def test_spans_reach_an_otlp_receiver(receiver: str, tmp_path: Path) -> None:
    cfg = write_yaml(
        tmp_path / "governd.yaml",
        f"""
principals: {{org: acme, teams: {{t: {{}}}}}}
observe: {{otlp_endpoint: "{receiver}", service_name: governd-test}}
upstreams: {{sim: {{kind: sim, prefill_tps: 1000000, decode_tps: 100000}}}}
models: {{m: {{deployments: [{{upstream: sim, model: sim-small}}]}}}}
mcp_servers:
  notes: {{transport: stdio, command: python, args: [-m, governd.testing.mcp_server]}}
""",
    )
    Receiver.bodies.clear()
    with governd_server(tmp_path, cfg, "adm-otlp") as served:
        key = AdminClient(served.url, "adm-otlp").call(
            "POST", "/admin/v1/keys", {"principal": "t"}
        )["key"]
        client = openai.OpenAI(base_url=served.url + "/v1", api_key=key, max_retries=0)
        for _ in range(3):
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "trace me"}]
            )  # type: ignore[arg-type]
        asyncio.run(call_tool(served.url, key))
    # Stopping the server flushed the batch processor.
    spans = []
    for body in Receiver.bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for rs in request.resource_spans:
            service = {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"]
            for ss in rs.scope_spans:
                spans += [(service, s) for s in ss.spans]
    assert len(spans) == 4
    service, span = spans[0]
    attrs = {a.key: a.value for a in span.attributes}
    assert service == "governd-test" and span.name == "chat m"
    assert attrs["gen_ai.provider.name"].string_value == "governd.sim"
    assert attrs["gen_ai.response.model"].string_value == "sim-small"
    assert attrs["gen_ai.usage.output_tokens"].int_value > 0
    tool = {s.name: s for _, s in spans}["execute_tool notes__read_note"]
    tool_attrs = {a.key: a.value.string_value for a in tool.attributes}
    assert tool_attrs["gen_ai.operation.name"] == "execute_tool"
    assert tool_attrs["governd.mcp_server"] == "notes"


async def call_tool(url: str, key: str) -> None:
    http = httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(url + "/mcp", http_client=http)) as client:
        await client.call_tool("notes__read_note", {"name": "welcome"})
