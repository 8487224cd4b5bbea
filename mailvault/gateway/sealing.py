"""The gateway's cryptography: a mailbox key pair wrapped by its password, mail sealed to it.

A mailbox has an X25519 key pair. Its private key is kept encrypted (AES-256-GCM) with a key
derived from the mailbox password by Argon2id; the salt and the Argon2id parameters are kept
beside it, so a later change of the defaults leaves older mailboxes readable.

A message is sealed to the public key alone (ECIES): a fresh ephemeral X25519 key pair per
message, HKDF-SHA256 over the shared secret (bound to both public keys) gives a one-time
AES-256-GCM key. Whoever writes mail (the SMTP endpoint, the proxies) never needs the
password; only someone who has it can open what was sealed. The sealed form is

    MAGIC (6) || ephemeral public key (32) || nonce (12) || ciphertext+tag

and the caller's associated data (the mailbox and message ids) is authenticated too, so a
sealed message copied under another name or into another mailbox fails to open.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mailvault.errors import IntegrityError, MailboxPasswordError

MAGIC = b"MVGW1\n"
KEY_BYTES = 32
NONCE_BYTES = 12
HEADER_BYTES = len(MAGIC) + KEY_BYTES + NONCE_BYTES
# Argon2id as the vault keyring uses it (RFC 9106's second recommended option, lighter on
# memory): about a tenth of a second here, paid once per unlock, never per message.
ARGON2_DEFAULTS = {"time_cost": 3, "memory_cost": 65536, "parallelism": 2}
_HKDF_INFO = b"mailvault gateway message v1"
_WRAP_AAD = b"mailvault gateway private key v1:"


@dataclass(frozen=True)
class WrappedKey:
    """A mailbox's private key encrypted under its password, with what unwrapping needs."""

    public_key: bytes
    salt: bytes
    argon2: dict[str, int]
    wrapped: bytes

    def to_json(self) -> dict[str, Any]:
        """The form kept in the mailbox's record."""
        return {
            "public_key": _b64(self.public_key),
            "kdf": {"name": "argon2id", "salt": _b64(self.salt), **self.argon2},
            "wrapped_private_key": _b64(self.wrapped),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WrappedKey:
        """The inverse of to_json()."""
        kdf = dict(data["kdf"])
        if kdf.pop("name") != "argon2id":
            raise IntegrityError("a gateway mailbox names a key derivation it does not know.")
        salt = base64.b64decode(kdf.pop("salt"))
        return cls(public_key=base64.b64decode(data["public_key"]), salt=salt,
                   argon2={k: int(v) for k, v in kdf.items()},
                   wrapped=base64.b64decode(data["wrapped_private_key"]))


def new_password() -> str:
    """A random mailbox password (144 bits, URL-safe text)."""
    return secrets.token_urlsafe(18)


def new_key_pair(password: str, label: str) -> WrappedKey:
    """A fresh X25519 key pair, its private key wrapped under ``password``; ``label`` (the
    mailbox id) is bound into the wrapping so a record copied to another mailbox fails."""
    private = X25519PrivateKey.generate()
    return wrap(private.private_bytes_raw(), _public_bytes(private.public_key()), password, label)


def wrap(private: bytes, public: bytes, password: str, label: str) -> WrappedKey:
    """Encrypt a raw private key under a key derived from ``password`` with a new salt."""
    salt = secrets.token_bytes(16)
    params = dict(ARGON2_DEFAULTS)
    key = _derive(password, salt, params)
    nonce = os.urandom(NONCE_BYTES)
    sealed = nonce + AESGCM(key).encrypt(nonce, private, _WRAP_AAD + label.encode())
    return WrappedKey(public_key=public, salt=salt, argon2=params, wrapped=sealed)


def unwrap(wrapped: WrappedKey, password: str, label: str) -> bytes:
    """The raw private key; MailboxPasswordError when ``password`` does not open it."""
    key = _derive(password, wrapped.salt, wrapped.argon2)
    try:
        private = AESGCM(key).decrypt(wrapped.wrapped[:NONCE_BYTES],
                                      wrapped.wrapped[NONCE_BYTES:],
                                      _WRAP_AAD + label.encode())
    except InvalidTag:
        raise MailboxPasswordError("the password does not unlock this mailbox.") from None
    if _public_bytes(X25519PrivateKey.from_private_bytes(private).public_key()) != \
            wrapped.public_key:
        raise IntegrityError("a gateway mailbox's key pair does not match its public key.")
    return private


def seal(public_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` to ``public_key`` (in memory: nothing is written here)."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = _public_bytes(ephemeral.public_key())
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public_key))
    key = _message_key(shared, ephemeral_public, public_key)
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + ephemeral_public + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(private_key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Decrypt what seal() made; IntegrityError when any byte of it was altered."""
    if len(sealed) < HEADER_BYTES + 16 or not sealed.startswith(MAGIC):
        raise IntegrityError("a gateway message is damaged: its header is not intact.")
    ephemeral_public = sealed[len(MAGIC):len(MAGIC) + KEY_BYTES]
    nonce = sealed[len(MAGIC) + KEY_BYTES:HEADER_BYTES]
    private = X25519PrivateKey.from_private_bytes(private_key)
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key = _message_key(shared, ephemeral_public, _public_bytes(private.public_key()))
        return AESGCM(key).decrypt(nonce, sealed[HEADER_BYTES:], aad)
    except (InvalidTag, ValueError):
        # ValueError: an altered ephemeral key can be a low-order point (no shared secret).
        raise IntegrityError(
            "a gateway message failed authentication: its bytes were altered.") from None


def _message_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=_HKDF_INFO + ephemeral_public + recipient_public).derive(shared)


def _derive(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    return hash_secret_raw(password.encode(), salt, hash_len=KEY_BYTES, type=Type.ID,
                           time_cost=params["time_cost"], memory_cost=params["memory_cost"],
                           parallelism=params["parallelism"])


def _public_bytes(public: X25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
