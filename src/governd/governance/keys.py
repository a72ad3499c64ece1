"""API keys: created once and shown once, stored as a SHA-256 hash, resolved to a principal.

Keys are 256-bit random secrets, so a fast hash is as safe as a slow one here
(nothing to brute-force) and keeps authentication in microseconds. Resolved
keys are cached for ``cache_s`` seconds: a revocation made on another replica
takes effect within that time, one made on this replica at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from governd.actions import Principal
from governd.clock import Clock
from governd.errors import AuthenticationFailed, InvalidRequest, NotFound, StorageUnavailable
from governd.governance.principals import PrincipalTree

KEY_PREFIX = "gvd-"


class KeyStore(Protocol):
    """Where key records live (``governd.ledger.Storage`` is one)."""

    def insert_key(self, row: dict[str, Any]) -> None: ...
    def key_by_hash(self, digest: str) -> dict[str, Any] | None: ...
    def keys(self, principal: str | None = None) -> list[dict[str, Any]]: ...
    def revoke_key(self, key_id: str, at: float) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record: never the key itself."""

    id: str
    principal: str
    name: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ApiKey:
        """From a stored row."""
        return cls(
            row["id"],
            row["principal"],
            row["name"],
            row["created_at"],
            row["expires_at"],
            row["revoked_at"],
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain data for the admin API."""
        return {
            "id": self.id,
            "principal": self.principal,
            "name": self.name,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


def digest(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyRing:
    """Creates, lists, revokes and authenticates keys."""

    def __init__(
        self, store: KeyStore, tree: PrincipalTree, clock: Clock, cache_s: float = 5.0
    ) -> None:
        self._store = store
        self._tree = tree
        self._clock = clock
        self._cache_s = cache_s
        self._cache: dict[str, tuple[ApiKey, Principal, float]] = {}

    def create(
        self, principal: str, name: str | None = None, expires_in_s: float | None = None
    ) -> tuple[ApiKey, str]:
        """A new key for ``TEAM[/PROJECT]``: its record and the secret (shown once)."""
        who = self._tree.resolve(principal)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        key = ApiKey(
            id="key_" + secrets.token_hex(6),
            principal=who.path,
            name=name,
            created_at=now,
            expires_at=now + expires_in_s if expires_in_s else None,
            revoked_at=None,
        )
        self._store.insert_key({**key.as_dict(), "hash": digest(secret)})
        return key, secret

    def list(self, principal: str | None = None) -> list[ApiKey]:
        """Keys in a principal's subtree (all keys when None)."""
        return [ApiKey.from_row(r) for r in self._store.keys(principal)]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key; it fails authentication from now on."""
        row = self._store.revoke_key(key_id, self._clock.now())
        if row is None:
            raise NotFound(f"no key {key_id!r}", param="id")
        self._cache = {h: v for h, v in self._cache.items() if v[0].id != key_id}
        return ApiKey.from_row(row)

    async def authenticate(self, secret: str) -> Principal:
        """The principal a presented key acts as; ``AuthenticationFailed`` otherwise."""
        if not secret.startswith(KEY_PREFIX):
            raise AuthenticationFailed("invalid API key")
        h = digest(secret)
        now = self._clock.now()
        hit = self._cache.get(h)
        if hit is None or now - hit[2] > self._cache_s:
            try:
                row = await asyncio.to_thread(self._store.key_by_hash, h)
            except StorageUnavailable:
                if hit is None:
                    raise
                # Stale if error: a key seen before keeps working while the store is down (a
                # revocation made meanwhile binds once it is back).
                return self._valid(hit, now)
            if row is None:
                self._cache.pop(h, None)
                raise AuthenticationFailed("invalid API key")
            key = ApiKey.from_row(row)
            try:
                base = self._tree.resolve(key.principal)
            except InvalidRequest:
                raise AuthenticationFailed("API key's principal no longer exists") from None
            hit = (key, Principal(base.org, base.team, base.project, key.id), now)
            self._cache[h] = hit
        return self._valid(hit, now)

    @staticmethod
    def _valid(hit: tuple[ApiKey, Principal, float], now: float) -> Principal:
        key, principal, _ = hit
        if key.revoked_at is not None:
            raise AuthenticationFailed("API key revoked")
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthenticationFailed("API key expired")
        return principal
