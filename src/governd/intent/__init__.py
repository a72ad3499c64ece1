"""The intent plane: HTTP and MCP surfaces that turn requests into actions and results back.

``openai_api`` (the OpenAI-compatible ``/v1``), ``mcp_gateway`` (``/mcp``),
``jobs_api``, ``admin_api``, ``budgets_api`` and ``runs_api``; ``auth``,
``http`` and ``validation`` are what they share. Each route class is given
only the components it uses; ``governd.server`` wires them together.
"""
