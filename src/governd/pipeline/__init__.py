"""The one path every action takes: decide -> reserve -> execute -> settle -> record.

``model_calls`` (model calls and tool calls), ``entries`` (the ledger entries
they write), ``jobs/`` (accelerator jobs: queue -> schedule -> execute ->
settle -> record).
"""
