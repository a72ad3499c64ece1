"""A small synchronous client of the admin API, for the CLI and the demo."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8420"


class AdminError(Exception):
    """The server answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AdminClient:
    """Calls ``/admin/v1`` with the admin key."""

    def __init__(self, url: str, admin_key: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._key = admin_key
        self._timeout = timeout

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        """One request; returns the decoded JSON reply or raises ``AdminError``."""
        params = {k: v for k, v in query.items() if v is not None}
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("content-type", "application/json")
        if self._key:
            req.add_header("authorization", f"Bearer {self._key}")
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise _error_of(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach governd at {self.url}: {reason}") from None


def _error_of(exc: urllib.error.HTTPError) -> AdminError:
    try:
        err = json.loads(exc.read())["error"]
        return AdminError(err["message"], exc.code, err.get("code"))
    except (ValueError, KeyError, TypeError):
        return AdminError(f"HTTP {exc.code} from governd", exc.code)
