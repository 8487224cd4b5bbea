"""Signing an export's summary with the vault's Ed25519 export key, and checking it.

What is signed is the statement ``mailvault-export-summary sha256=<hex>``: the SHA-256 of
``summary.json``'s exact bytes (which list the SHA-256 of every other file). The public
key travels in every export as ``export-key.pem`` and is printed by ``mailvault
export-key``; its fingerprint is the SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

_STATEMENT = "mailvault-export-summary sha256={}"


def public_pem(private: bytes) -> bytes:
    """The public half of a private key, as PEM (SubjectPublicKeyInfo)."""
    return Ed25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def fingerprint(pem: bytes) -> str:
    """SHA-256 of the raw public key, hex, in groups of four (for reading aloud)."""
    raw = _public(pem).public_bytes(Encoding.Raw, PublicFormat.Raw)
    digest = hashlib.sha256(raw).hexdigest()
    return ":".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def sign(private: bytes, summary_sha256: str) -> str:
    """The base64 signature of a summary's SHA-256 (Ed25519 is deterministic: the same
    summary and key always give the same signature)."""
    key = Ed25519PrivateKey.from_private_bytes(private)
    return base64.b64encode(key.sign(_STATEMENT.format(summary_sha256).encode())).decode()


def valid(pem: bytes, summary_sha256: str, signature: str) -> bool:
    """Whether ``signature`` is the key's signature of that summary hash."""
    try:
        _public(pem).verify(base64.b64decode(signature, validate=True),
                            _STATEMENT.format(summary_sha256).encode())
    except (InvalidSignature, ValueError):
        return False
    return True


def _public(pem: bytes) -> Ed25519PublicKey:
    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the export key is not an Ed25519 public key.")
    return key
