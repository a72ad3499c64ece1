"""``/admin/v1/explain/{principal}``: what bounds a principal, for operators and for the key itself.

The admin key may explain any principal; a governd key may explain only the
principal it acts as (``self``, or its own path).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from governd.actions import Principal
from governd.errors import AuthenticationFailed, PermissionDenied
from governd.intent.auth import bearer
from governd.intent.http import json_response

if TYPE_CHECKING:
    from governd.governance.keys import KeyRing
    from governd.governance.principals import PrincipalTree

#: Builds the explanation of a principal.
Explain = Callable[[Principal], Awaitable[dict[str, Any]]]


class ExplainRoutes:
    """Handlers of ``/admin/v1/explain``."""

    def __init__(
        self,
        *,
        explain: Explain,
        keyring: KeyRing,
        tree: PrincipalTree,
        admin_key: str | None,
    ) -> None:
        self._explain = explain
        self._keyring = keyring
        self._tree = tree
        self._admin_key = admin_key

    def routes(self) -> list[Route]:
        """The Starlette routes."""
        return [Route("/admin/v1/explain/{principal:path}", self.show, methods=["GET"])]

    async def show(self, request: Request) -> Response:
        """The principal's operating, cost and risk boundaries and its SLOs."""
        asked = request.path_params["principal"]
        token = bearer(request)
        if self._admin_key and hmac.compare_digest(token.encode(), self._admin_key.encode()):
            who = self._tree.resolve(asked)
        else:
            try:
                who = await self._keyring.authenticate(token)
            except AuthenticationFailed:
                raise AuthenticationFailed("invalid admin key or governd key") from None
            if asked not in ("self", who.path) and self._tree.resolve(asked).path != who.path:
                raise PermissionDenied(
                    f"a key may explain only its own principal ({who.path}); "
                    "use the admin key for others"
                )
        return json_response(await self._explain(who))
