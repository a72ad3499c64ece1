"""Spans follow the GenAI semantic conventions (checked with the SDK's in-memory exporter)."""

from __future__ import annotations

from dataclasses import replace

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from governd.config import ObserveConfig
from governd.observe.traces import Tracing
from tests.ledger.test_storage import BASE


def test_a_model_call_becomes_a_genai_span() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(ObserveConfig(), exporter)
    tracing.record(
        replace(BASE, ts=2000.0, latency_ms=250.0, model="gpt-4o", run_id="r1"),
        "openai",
        "gpt-4o-2024",
    )
    (span,) = exporter.get_finished_spans()
    assert span.name == "chat gpt-4o" and span.kind == SpanKind.CLIENT
    a = span.attributes or {}
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert (a["gen_ai.request.model"], a["gen_ai.response.model"]) == ("gpt-4o", "gpt-4o-2024")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        BASE.input_tokens,
        BASE.output_tokens,
    )
    assert a["governd.run_id"] == "r1" and a["governd.principal"] == BASE.principal
    assert span.end_time - span.start_time == 250_000_000
    assert span.status.status_code == StatusCode.UNSET
    assert not any("prompt" in k or "completion" in k or "content" in k for k in a)


def test_failures_are_error_spans() -> None:
    exporter = InMemorySpanExporter()
    Tracing(ObserveConfig(), exporter).record(
        replace(BASE, operation="embedding", status=504, error_code="upstream_timeout"), None, None
    )
    (span,) = exporter.get_finished_spans()
    assert span.name.startswith("embeddings ")
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "upstream_timeout"


def test_a_tool_call_becomes_an_execute_tool_span() -> None:
    exporter = InMemorySpanExporter()
    tool_call = replace(
        BASE,
        kind="tool_call",
        operation="tool",
        model="notes__delete_note",
        served_model="delete_note",
        deployment="notes",
        decision="deny",
        status=403,
        error_code="policy_denied",
        run_id="r2",
        latency_ms=3.0,
        ts=2000.0,
    )
    Tracing(ObserveConfig(), exporter).record_tool(tool_call)
    (span,) = exporter.get_finished_spans()
    assert span.name == "execute_tool notes__delete_note" and span.kind == SpanKind.INTERNAL
    a = span.attributes or {}
    assert a["gen_ai.operation.name"] == "execute_tool"
    assert a["gen_ai.tool.name"] == "notes__delete_note"
    assert a["governd.mcp_server"] == "notes" and a["governd.run_id"] == "r2"
    assert a["governd.decision"] == "deny" and a["error.type"] == "policy_denied"
    assert span.status.status_code == StatusCode.ERROR
    assert span.end_time - span.start_time == 3_000_000
