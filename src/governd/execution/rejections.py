"""What a client is told when an upstream refuses a request: its reason, never its secrets.

An upstream's 4xx message is useful (``max_tokens is too large``) and may hold
what it was sent (an echoed ``Authorization`` header). The message is passed
on with every credential governd sends that upstream, and anything shaped
like a bearer token or an API key, replaced by ``[redacted]``, cut to a
length a client can show.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson

from governd.errors import GovernError, InvalidRequest, UpstreamError

#: Bearer tokens, and the key shapes of OpenAI (``sk-``), Anthropic (``sk-ant-``) and governd.
_SECRETISH = re.compile(r"(?i)(bearer\s+)[^\s\"',]+|\b(?:sk|gvd|adm)-[A-Za-z0-9_\-]{8,}")
_MAX_CHARS = 500
REDACTED = "[redacted]"


def upstream_rejection(
    status: int, body: bytes, target: str, secrets: Iterable[str] = ()
) -> GovernError:
    """The error to give a client when an upstream refuses a request (4xx)."""
    if status in (401, 403):
        return UpstreamError(f"upstream {target} refused governd's credentials")
    message = f"upstream {target} rejected the request"
    param = None
    try:
        err = orjson.loads(body).get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            param = err.get("param") if isinstance(err.get("param"), str) else None
        elif isinstance(err, str):
            message = err
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return InvalidRequest(
        scrub(message, secrets), param=param, status=status if 400 <= status < 500 else 400
    )


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` without ``secrets`` or anything shaped like a credential, at most 500 characters."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _SECRETISH.sub(lambda m: (m.group(1) or "") + REDACTED, text)
    return text if len(text) <= _MAX_CHARS else text[: _MAX_CHARS - 1] + "…"
