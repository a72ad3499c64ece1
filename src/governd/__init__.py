"""governd: a control plane that governs AI workloads.

Every action (model call, tool call, job) passes one loop:
intent -> decision -> execution -> consumption -> cost and risk outcome.
"""

__version__ = "0.1.0"
