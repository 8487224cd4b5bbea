"""SMTP AUTH users of the capture endpoint, kept in the vault with Argon2id password hashes.

``VAULT/smtp-users.json`` maps a user name to its hash (never the password). It is rewritten
atomically; the endpoint reads it at start and checks a login in a worker thread, because an
Argon2 check takes tens of milliseconds and must not stall the other sessions.
"""

from __future__ import annotations

import json
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailvault.errors import ConfigError, InputError, NotFoundError
from mailvault.store import file_modes

USERS_FILE = "smtp-users.json"


def _hasher() -> PasswordHasher:
    return PasswordHasher()


def load_users(vault_path: Path) -> dict[str, str]:
    """User name -> Argon2id hash (empty when no user was added)."""
    path = vault_path / USERS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}.") from exc
    return {str(name): str(value) for name, value in data.items()}


def add_user(vault_path: Path, name: str, password: str) -> bool:
    """Add a user or set a new password; returns whether the user is new."""
    if not name or any(c.isspace() for c in name):
        raise InputError("a user name must be non-empty and have no spaces.")
    if len(password) < 8:
        raise InputError("a password must have at least 8 characters.")
    users = load_users(vault_path)
    new = name not in users
    users[name] = _hasher().hash(password)
    _save(vault_path, users)
    return new


def remove_user(vault_path: Path, name: str) -> None:
    """Remove a user (NotFoundError if there is none by that name)."""
    users = load_users(vault_path)
    if name not in users:
        raise NotFoundError(f"there is no SMTP user {name!r}.")
    del users[name]
    _save(vault_path, users)


def check_password(users: dict[str, str], name: str, password: str) -> bool:
    """Whether ``password`` is right for ``name`` (slow on purpose: run it off the loop)."""
    stored = users.get(name)
    if stored is None:
        return False
    try:
        return bool(_hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def _save(vault_path: Path, users: dict[str, str]) -> None:
    file_modes.write_replacing(vault_path / USERS_FILE,
                               json.dumps(users, indent=1, sort_keys=True).encode())
