"""The intent plane: the OpenAI-compatible API, the admin API, authentication.

Exports ``create_app``, which builds the whole server from a config.
"""

from governd.intent.app import Services, create_app

__all__ = ["Services", "create_app"]
