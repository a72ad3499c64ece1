"""Bearer-token authentication for the OpenAI API (governd keys) and the admin API."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from governd.errors import AuthenticationFailed


def bearer(request: Request) -> str:
    """The token of ``Authorization: Bearer <token>``; 401 when absent or malformed."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationFailed("missing Authorization header; expected 'Bearer <key>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("malformed Authorization header; expected 'Bearer <key>'")
    return token.strip()


def check_admin(request: Request, admin_key: str | None) -> None:
    """Require the admin key (compared in constant time)."""
    if not admin_key:
        raise AuthenticationFailed("the admin API is disabled: set admin_key or GOVERND_ADMIN_KEY")
    if not hmac.compare_digest(bearer(request).encode(), admin_key.encode()):
        raise AuthenticationFailed("invalid admin key")
