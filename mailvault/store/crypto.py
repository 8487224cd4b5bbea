"""The vault's keyring: a master key that wraps data keys; blobs sealed with AES-256-GCM.

The master key is either a random key in ``keys/master.key`` (mode 0600) or derived from a
passphrase with Argon2id (parameters and salt in ``keys/keyring.json``; the passphrase comes
from ``MAILVAULT_PASSPHRASE`` or a prompt). Data keys are random and stored wrapped by the
master key, so a passphrase change re-wraps two dozen bytes, not the archive.

A sealed blob is ``nonce (12) || ciphertext+tag``, with the blob's SHA-256 as associated data:
a blob copied to another hash's place fails to open.

The audit log's chain key (an HMAC key, ``keys/audit-chain.key``) is kept here too, sealed by
the master key: the catalog never holds it, so whoever can only edit the catalog cannot write
entries that verify.

The export signing key (Ed25519, ``keys/export-signing.key``, sealed by the master key the
same way) signs every eDiscovery export; its public half goes into each export so the other
side can check one without the vault. Vaults made before it existed get it on first use.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mailvault.errors import IntegrityError, KeyringError
from mailvault.store import file_modes

KEYRING_FILE = "keyring.json"
MASTER_KEY_FILE = "master.key"
CHAIN_KEY_FILE = "audit-chain.key"
_CHAIN_KEY_LABEL = "audit-chain-key"
EXPORT_KEY_FILE = "export-signing.key"
_EXPORT_KEY_LABEL = "export-signing-key"
NONCE_BYTES = 12
TAG_BYTES = 16
_ARGON2 = {"time_cost": 3, "memory_cost": 65536, "parallelism": 2}


@dataclass
class Keyring:
    """Unlocked data keys by id; the newest seals, any of them opens."""

    master: bytes
    data_keys: dict[int, bytes]
    current: int

    def seal(self, plaintext: bytes, aad: bytes) -> tuple[int, bytes]:
        """Encrypt with the current data key: (key id, nonce || ciphertext)."""
        nonce = os.urandom(NONCE_BYTES)
        return self.current, nonce + AESGCM(self.data_keys[self.current]).encrypt(
            nonce, plaintext, aad
        )

    def open(self, key_id: int, sealed: bytes, aad: bytes) -> bytes:
        """Decrypt and authenticate; IntegrityError when the bytes were altered."""
        key = self.data_keys.get(key_id)
        if key is None:
            raise IntegrityError(f"a blob names data key {key_id}, which the keyring lacks.")
        try:
            return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise IntegrityError("a blob failed authentication: its bytes were altered.") from None

    def wrap_secret(self, secret: bytes, label: str) -> str:
        """Encrypt a small secret (a stored password) under the master key, as text."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + AESGCM(self.master).encrypt(nonce, secret, label.encode())
        return base64.b64encode(sealed).decode()

    def unwrap_secret(self, text: str, label: str) -> bytes:
        """The inverse of wrap_secret()."""
        sealed = base64.b64decode(text)
        try:
            return AESGCM(self.master).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                               label.encode())
        except InvalidTag:
            raise KeyringError(f"the stored secret {label!r} cannot be decrypted.") from None


def create_keyring(keys_dir: Path, passphrase: str | None = None) -> Keyring:
    """Make a new keyring in ``keys_dir`` with one data key."""
    file_modes.make_folder(keys_dir)
    record: dict[str, object] = {"version": 1}
    if passphrase:
        salt = secrets.token_bytes(16)
        master = _derive(passphrase, salt)
        record["kdf"] = {"name": "argon2id", "salt": base64.b64encode(salt).decode(), **_ARGON2}
    else:
        master = secrets.token_bytes(32)
        _write_private(keys_dir / MASTER_KEY_FILE, base64.b64encode(master) + b"\n")
        record["kdf"] = {"name": "keyfile", "file": MASTER_KEY_FILE}
    data_key = secrets.token_bytes(32)
    ring = Keyring(master=master, data_keys={1: data_key}, current=1)
    record["check"] = ring.wrap_secret(b"mailvault", "check")
    record["data_keys"] = [{"id": 1, "wrapped": ring.wrap_secret(data_key, "data-key-1")}]
    _write_private(keys_dir / KEYRING_FILE, json.dumps(record, indent=2).encode())
    export_signing_key(keys_dir, ring)
    return ring


def open_keyring(keys_dir: Path, passphrase: str | None = None) -> Keyring:
    """Unlock the keyring in ``keys_dir``; KeyringError with the reason when it cannot be."""
    try:
        record = json.loads((keys_dir / KEYRING_FILE).read_text())
    except FileNotFoundError:
        raise KeyringError(f"there is no keyring in {keys_dir}.") from None
    except (OSError, ValueError) as exc:
        raise KeyringError(f"the keyring in {keys_dir} cannot be read: {exc}.") from exc
    kdf = record["kdf"]
    if kdf["name"] == "argon2id":
        if passphrase is None:
            passphrase = os.environ.get("MAILVAULT_PASSPHRASE")
        if not passphrase:
            raise KeyringError("this vault is locked with a passphrase: set MAILVAULT_PASSPHRASE.")
        master = _derive(passphrase, base64.b64decode(kdf["salt"]))
    else:
        try:
            master = base64.b64decode((keys_dir / kdf["file"]).read_bytes().strip())
        except OSError as exc:
            raise KeyringError(f"the master key file cannot be read: {exc.strerror}.") from exc
    ring = Keyring(master=master, data_keys={}, current=0)
    try:
        ring.unwrap_secret(record["check"], "check")
    except KeyringError:
        raise KeyringError("the passphrase or master key does not unlock this vault.") from None
    for entry in record["data_keys"]:
        key_id = int(entry["id"])
        ring.data_keys[key_id] = ring.unwrap_secret(entry["wrapped"], f"data-key-{key_id}")
    ring.current = max(ring.data_keys)
    return ring


def load_chain_key(keys_dir: Path, ring: Keyring) -> bytes | None:
    """The audit chain key, or None when this vault has none yet (made by an older version)."""
    try:
        text = (keys_dir / CHAIN_KEY_FILE).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyringError(f"the audit chain key cannot be read: {exc.strerror}.") from exc
    return ring.unwrap_secret(text, _CHAIN_KEY_LABEL)


def create_chain_key(keys_dir: Path, ring: Keyring) -> bytes:
    """Make the audit chain key (the file must not exist yet) and return it."""
    key = secrets.token_bytes(32)
    try:
        _write_private(keys_dir / CHAIN_KEY_FILE,
                       ring.wrap_secret(key, _CHAIN_KEY_LABEL).encode() + b"\n")
    except OSError as exc:
        raise KeyringError(f"the audit chain key cannot be written: {exc.strerror}.") from exc
    return key


def export_signing_key(keys_dir: Path, ring: Keyring) -> bytes:
    """The vault's Ed25519 export signing key (32 private bytes), made on first use."""
    path = keys_dir / EXPORT_KEY_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        try:
            _write_private(path, ring.wrap_secret(key, _EXPORT_KEY_LABEL).encode() + b"\n")
        except FileExistsError:
            # Another process made it first: theirs is the key.
            return export_signing_key(keys_dir, ring)
        except OSError as exc:
            raise KeyringError(f"the export signing key cannot be written: "
                               f"{exc.strerror}.") from exc
        return key
    except OSError as exc:
        raise KeyringError(f"the export signing key cannot be read: {exc.strerror}.") from exc
    return ring.unwrap_secret(text, _EXPORT_KEY_LABEL)


def _derive(passphrase: str, salt: bytes) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    return bytes(
        hash_secret_raw(passphrase.encode(), salt, hash_len=32, type=Type.ID, **_ARGON2)
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = file_modes.open_new(path, os.O_WRONLY | os.O_EXCL)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
