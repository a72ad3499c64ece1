"""Secrets at rest: a job's environment values sealed before they reach a table.

A job's environment is kept so that a job requeued after a restart runs as
it was submitted; its values may be credentials. They are stored sealed
(Fernet: AES-128-CBC with HMAC-SHA256) under a key derived from the ledger's
signing key, which replicas share and a database dump does not hold. Names
stay in clear: the API shows them, never the values.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken

from governd.errors import GovernError
from governd.ledger.signing import Signer

_PREFIX = "sealed:v1:"
_PURPOSE = b"governd/job-env/v1"


class Sealer:
    """Seals and opens short secrets with one key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    @classmethod
    def of(cls, signer: Signer) -> Sealer:
        """The sealer whose key derives from ``signer``'s."""
        return cls(signer.derived(_PURPOSE))

    def seal(self, value: str) -> str:
        """``value`` sealed, marked as such."""
        return _PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        """A value as stored: opened if sealed (rows written before sealing are in clear)."""
        if not stored.startswith(_PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored.removeprefix(_PREFIX).encode()).decode()
        except InvalidToken:
            raise GovernError(
                "a job's sealed environment cannot be opened: the ledger's signing key changed"
            ) from None
