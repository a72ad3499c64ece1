"""The execution plane: upstream clients, the router and its resilience, the sim engine.

Exports the ``Router`` that the pipeline sends model calls through, and
``build_upstreams`` that turns the config's upstreams into clients.
"""

from governd.execution.router import Routed, Router, build_upstreams

__all__ = ["Routed", "Router", "build_upstreams"]
