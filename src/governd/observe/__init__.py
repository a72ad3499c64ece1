"""Observability: Prometheus metrics and live gauges (traces next)."""
