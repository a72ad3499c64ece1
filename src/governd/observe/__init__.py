"""Observability: metrics, traces and the dashboard (none yet; the ledger is the record)."""
