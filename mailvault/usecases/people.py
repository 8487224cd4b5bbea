"""The people and programs that use the archive: users (roles, addresses, passwords, TOTP),
API tokens, and the SMTP users the capture endpoint accepts (Permission.USERS, the
administrator's).

Every change is audited once, in the transaction that makes it: the accounts capability writes
``user-*`` and ``token-*`` entries itself, and SMTP users, kept in a file beside the catalog,
are audited here (``smtp-user add``, ``smtp-user password``, ``smtp-user remove``). Listing is
not audited. No entry holds a password, hash, secret or token.
"""

from __future__ import annotations

from collections.abc import Iterable

from mailvault.accounts import tokens, users
from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.accounts.tokens import NewToken, TokenRecord
from mailvault.accounts.users import UserRecord
from mailvault.capture import users as smtp_users
from mailvault.store import audit
from mailvault.vault import Vault


def add_user(vault: Vault, who: Principal, name: str, roles: Iterable[str],
             addresses: Iterable[str], password: str) -> UserRecord:
    """Add a user who signs in with a password (only its Argon2id hash is kept)."""
    require(who, Permission.USERS)
    return users.add_user(vault, name, roles, addresses, password, who.name)


def add_first_administrator(vault: Vault, who: Principal) -> str | None:
    """When the vault has never had a user, create the first administrator (also auditor,
    named ``accounts.users.FIRST_ADMIN``) with a random password and return it, the only
    time it is shown; None when the vault has users already."""
    require(who, Permission.USERS)
    return users.add_first_administrator(vault, who.name)


def list_users(vault: Vault, who: Principal, *, include_removed: bool = False
               ) -> list[UserRecord]:
    """The users, their roles, addresses and state (removed ones only when asked)."""
    require(who, Permission.USERS)
    return users.list_users(vault, include_removed=include_removed)


def update_user(vault: Vault, who: Principal, name: str, *,
                roles: Iterable[str] | None = None,
                addresses: Iterable[str] | None = None) -> UserRecord:
    """Replace a user's roles or addresses (what is not given stays)."""
    require(who, Permission.USERS)
    return users.update_user(vault, name, who.name, roles=roles, addresses=addresses)


def set_password(vault: Vault, who: Principal, name: str, password: str) -> None:
    """Give a user a new password (this also ends a lock-out)."""
    require(who, Permission.USERS)
    users.set_password(vault, name, password, who.name)


def disable_user(vault: Vault, who: Principal, name: str) -> None:
    """Refuse the user's sign-ins and tokens until they are enabled again."""
    require(who, Permission.USERS)
    users.disable_user(vault, name, who.name)


def enable_user(vault: Vault, who: Principal, name: str) -> None:
    """Let a disabled or locked-out user sign in again."""
    require(who, Permission.USERS)
    users.enable_user(vault, name, who.name)


def remove_user(vault: Vault, who: Principal, name: str) -> int:
    """Remove a user for good (the name is never given again); returns how many of their
    tokens were revoked."""
    require(who, Permission.USERS)
    return users.remove_user(vault, name, who.name)


def enable_totp(vault: Vault, who: Principal, name: str) -> str:
    """Give a user a new TOTP secret; returns its provisioning URI, to be shown once."""
    require(who, Permission.USERS)
    return users.enable_totp(vault, name, who.name)


def disable_totp(vault: Vault, who: Principal, name: str) -> None:
    """Remove a user's TOTP second factor."""
    require(who, Permission.USERS)
    users.disable_totp(vault, name, who.name)


def create_token(vault: Vault, who: Principal, user: str, expires_days: int | None = None
                 ) -> NewToken:
    """Make an API token acting as ``user`` (shown once; only its hash is kept)."""
    require(who, Permission.USERS)
    return tokens.create_token(vault, user, expires_days, who.name)


def list_tokens(vault: Vault, who: Principal) -> list[TokenRecord]:
    """Every API token's record (never the token itself)."""
    require(who, Permission.USERS)
    return tokens.list_tokens(vault)


def revoke_token(vault: Vault, who: Principal, token_id: int) -> bool:
    """Revoke a token; False when it was revoked already."""
    require(who, Permission.USERS)
    return tokens.revoke_token(vault, token_id, who.name)


def add_smtp_user(vault: Vault, who: Principal, name: str, password: str) -> bool:
    """Add a user the SMTP endpoint accepts (AUTH), or give one a new password; returns
    whether the user is new."""
    require(who, Permission.USERS)
    new = smtp_users.add_user(vault.path, name, password)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "smtp-user add" if new else "smtp-user password",
                     {"user": name})
    return new


def list_smtp_users(vault: Vault, who: Principal) -> list[str]:
    """The SMTP users' names, sorted."""
    require(who, Permission.USERS)
    return sorted(smtp_users.load_users(vault.path))


def remove_smtp_user(vault: Vault, who: Principal, name: str) -> None:
    """Remove an SMTP user."""
    require(who, Permission.USERS)
    smtp_users.remove_user(vault.path, name)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "smtp-user remove", {"user": name})
