"""OpenTelemetry spans for model and tool calls, following the GenAI semantic conventions.

One span per call (``chat``/``embeddings``/... for models, ``execute_tool`` for
MCP tools), made when the call settles, with the call's real start
and end times: nothing on the request path waits for tracing, and nothing
happens at all unless ``observe.otlp_endpoint`` is set (or a test passes an
exporter). Prompts and completions are never put in spans.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from governd.config import ObserveConfig
from governd.ledger.entries import LedgerEntry

OPERATIONS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}


class Tracing:
    """Turns settled model calls into spans and exports them."""

    def __init__(self, cfg: ObserveConfig, exporter: SpanExporter | None = None) -> None:
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": cfg.service_name})
        )
        if exporter is not None:
            self._provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif cfg.otlp_endpoint:
            # Imported only when asked for: 3 MB a process that exports nothing need not hold.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self._provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=cfg.otlp_endpoint))
            )
        self._tracer = self._provider.get_tracer("governd")

    def record(self, entry: LedgerEntry, provider: str | None, response_model: str | None) -> None:
        """A span for one settled model call (``provider``: the upstream kind that served it)."""
        operation = OPERATIONS.get(entry.operation, entry.operation)
        end = int(entry.ts * 1e9)
        start = end - int(entry.latency_ms * 1e6)
        span = self._tracer.start_span(
            f"{operation} {entry.model or ''}".strip(), kind=SpanKind.CLIENT, start_time=start
        )
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": operation,
            "gen_ai.usage.input_tokens": entry.input_tokens,
            "gen_ai.usage.output_tokens": entry.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": entry.cached_tokens,
            "governd.request_id": entry.id,
            "governd.principal": entry.principal,
            "governd.decision": entry.decision,
            "governd.cost_usd": entry.cost_usd,
            "governd.stream": entry.stream,
        }
        optional = {
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": entry.model,
            "gen_ai.response.model": response_model,
            "governd.served_model": entry.served_model,
            "governd.deployment": entry.deployment,
            "governd.run_id": entry.run_id,
        }
        attributes.update({k: v for k, v in optional.items() if v})
        if entry.ttft_ms is not None:
            attributes["governd.ttft_ms"] = entry.ttft_ms
        span.set_attributes(attributes)
        if entry.error_code:
            span.set_attribute("error.type", entry.error_code)
            span.set_status(Status(StatusCode.ERROR, entry.error_code))
        span.end(end_time=end)

    def record_tool(self, entry: LedgerEntry) -> None:
        """An ``execute_tool`` span for one settled tool call (arguments and results stay out)."""
        end = int(entry.ts * 1e9)
        start = end - int(entry.latency_ms * 1e6)
        tool = entry.model or ""
        span = self._tracer.start_span(
            f"execute_tool {tool}".strip(), kind=SpanKind.INTERNAL, start_time=start
        )
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": tool,
            "gen_ai.tool.type": "extension",
            "mcp.method.name": "tools/call",
            "governd.request_id": entry.id,
            "governd.principal": entry.principal,
            "governd.decision": entry.decision,
        }
        optional = {"governd.mcp_server": entry.deployment, "governd.run_id": entry.run_id}
        attributes.update({k: v for k, v in optional.items() if v})
        span.set_attributes(attributes)
        if entry.error_code:
            span.set_attribute("error.type", entry.error_code)
            span.set_status(Status(StatusCode.ERROR, entry.error_code))
        span.end(end_time=end)

    def shutdown(self) -> None:
        """Export what is pending and stop."""
        self._provider.shutdown()
