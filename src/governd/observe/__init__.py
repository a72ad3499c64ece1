"""Observability: Prometheus metrics, live gauges and OpenTelemetry GenAI spans."""
