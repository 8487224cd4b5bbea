"""Passwords: Argon2id hashes (argon2-cffi's defaults, RFC 9106's second profile), and the
rules a new password must meet. Only the hash is ever stored."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailvault.errors import InputError

MAX_LENGTH = 1024
# A hash of a random password nobody knows, checked when a sign-in names no account, so that
# an unknown name takes as long to refuse as a wrong password (no timing oracle for names).
_NOBODY = ("$argon2id$v=19$m=65536,t=3,p=4$MBIddHsyrkfvUaTFFqd64Q$"
           "/D3jvdvDUnJT/PIl5ORiEH8Zyo5Lrm/2N0xWSNAyxQw")


@dataclass(frozen=True)
class Checked:
    """The outcome of checking a password against a stored hash."""

    ok: bool
    # The hash was made with older parameters: store a fresh one now the password is known.
    needs_rehash: bool = False


def check_new(password: str, min_length: int) -> None:
    """Refuse a password that is too short or too long (InputError, one sentence)."""
    if len(password) < min_length:
        raise InputError(f"a password must have at least {min_length} characters.")
    if len(password) > MAX_LENGTH:
        raise InputError(f"a password may have at most {MAX_LENGTH} characters.")


def hash_password(password: str) -> str:
    """The Argon2id hash to store (salted: the same password never hashes the same twice)."""
    return str(PasswordHasher().hash(password))


def verify(stored: str | None, password: str) -> Checked:
    """Check ``password`` against ``stored``; with no stored hash, spend the same time and fail.

    Slow on purpose (tens of milliseconds): a server runs it off its event loop.
    """
    hasher = PasswordHasher()
    try:
        hasher.verify(stored or _NOBODY, password)
    except (VerificationError, InvalidHashError):
        return Checked(ok=False)
    if stored is None:
        return Checked(ok=False)
    return Checked(ok=True, needs_rehash=bool(hasher.check_needs_rehash(stored)))
