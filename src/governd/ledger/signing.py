"""Ed25519 keys that sign checkpoints, and the message a checkpoint signs.

The key comes from ``ledger.signing_key`` (a PEM file). Without one, governd
creates a key beside a SQLite ledger (``<ledger>.signing.pem``, mode 0600) on
first start, so the embedded default is tamper-evident too. Verifiers trust
the public keys given to them (``ledger.trusted_keys``, ``--public-key``) and
the key of the configured file, never a key merely found in the database.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CHECKPOINT_VERSION = "governd.checkpoint.v1"


def key_id(public_hex: str) -> str:
    """A short, stable name for a public key."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


class Signer:
    """Signs checkpoints with one Ed25519 private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_hex = raw.hex()
        self.key_id = key_id(self.public_hex)

    @classmethod
    def load(cls, path: Path, create: bool = False) -> Signer:
        """The key in ``path`` (PEM); created there first when ``create`` and absent."""
        if not path.exists() and create:
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(loaded)

    def derived(self, purpose: bytes) -> bytes:
        """32 bytes of key for ``purpose``, derived from the private key (HKDF-SHA256).

        Replicas share the signing key already: what is sealed with a derived
        key (a job's environment values) can be opened by every one of them.
        """
        raw = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(raw)

    def sign(self, message: bytes) -> str:
        """The signature, hex."""
        return self._private.sign(message).hex()


def checkpoint_message(size: int, root_hex: str, chain_head_hex: str, ts: float) -> bytes:
    """What a checkpoint signature covers: tree size, Merkle root, last chain hash, time."""
    return orjson.dumps([CHECKPOINT_VERSION, size, root_hex, chain_head_hex, ts])


def verify(public_hex: str, message: bytes, signature_hex: str) -> bool:
    """Whether ``signature_hex`` is the key's signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(signature_hex), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True
