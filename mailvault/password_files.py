"""Passwords and keys read from a file the operator names (``--password-file``, a source's
``password_file``, an OAuth2 client secret or service-account key), so that they never sit in
a shell's history or a process list."""

from __future__ import annotations

from pathlib import Path

from mailvault.errors import InputError


def read_password_file(path: Path) -> str:
    """The first line of a password file (a trailing newline is not part of the password)."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"the password file {path} cannot be read: {exc.strerror}.") from exc
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise InputError(f"the password file {path} is empty.")
    return secret


def read_key_file(path: Path) -> str:
    """A key file whole (a service account's JSON key spans many lines)."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"the key file {path} cannot be read: "
                         f"{getattr(exc, 'strerror', None) or exc}.") from exc
    if not text.strip():
        raise InputError(f"the key file {path} is empty.")
    return text
