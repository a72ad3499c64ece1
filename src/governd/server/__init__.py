"""The composition root: builds every component from a config and wires them into one server.

``services`` constructs the components, ``app`` the ASGI application and its
lifespan, ``serve`` runs it under uvicorn, ``launcher`` starts ``governd serve``
as a child process (the demo, the end-to-end tests and the benchmarks).
"""

from governd.server.app import create_app

__all__ = ["create_app"]
