"""Users kept in the catalog (`users` table): roles, own addresses, Argon2id password hash,
sealed TOTP secret, disabled and lock-out state. Every change is audited in its own transaction.

Names are lower case and never reused: removing a user marks the row removed and clears its
secrets, so that the audit log's "alice" is one person for ever. Names cannot contain ``:``,
so no user can pass for the command line's ``cli:<os user>`` or a service's actor.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError as DuplicateRow

from mailvault.accounts import passwords, totp
from mailvault.accounts.principal import Principal, normal_addresses
from mailvault.accounts.roles import Role, parse_roles
from mailvault.errors import AuthenticationError, ConfigError, InputError, NotFoundError
from mailvault.store import audit, catalog, schema
from mailvault.vault import Vault

_NAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,63}")
# Deliberately loose (the archive holds whatever addresses mail carried), but one address a
# value: no spaces, commas or angle brackets, exactly one @ with something on either side.
_ADDRESS = re.compile(r"[^\s@<>,]+@[^\s@<>,]+")
REFUSED = "sign-in refused: the name, password or code is wrong, or the account is locked " \
          "or disabled."


@dataclass(frozen=True)
class UserRecord:
    """A user as listed (no secret: neither the hash nor the TOTP secret leaves this module)."""

    id: int
    name: str
    roles: frozenset[Role]
    addresses: tuple[str, ...]
    disabled: bool
    totp: bool
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    removed_at: datetime | None

    def status(self, at: datetime) -> str:
        """removed, disabled, locked or active (at the time given)."""
        if self.removed_at is not None:
            return "removed"
        if self.disabled:
            return "disabled"
        if self.locked_until is not None and self.locked_until > at:
            return "locked"
        return "active"

    def principal(self) -> Principal:
        return Principal(name=self.name, roles=self.roles, addresses=self.addresses)

    def to_json(self, at: datetime) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"name": self.name, "roles": sorted(r.value for r in self.roles),
                "addresses": list(self.addresses), "status": self.status(at),
                "totp": self.totp, "locked_until": iso(self.locked_until),
                "last_login_at": iso(self.last_login_at), "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at), "removed_at": iso(self.removed_at)}


def add_user(vault: Vault, name: str, roles: Iterable[str], addresses: Iterable[str],
             password: str, actor: str) -> UserRecord:
    """Create a user with a password (and no TOTP yet)."""
    name = check_name(name)
    granted = _roles(roles)
    owned = _addresses(addresses)
    _check_user_role(granted, owned)
    passwords.check_new(password, vault.settings.accounts.min_password_length)
    hashed = passwords.hash_password(password)
    at = catalog.now()
    try:
        with vault.engine.begin() as conn:
            existing = conn.execute(select(schema.users.c.removed_at)
                                    .where(schema.users.c.name == name)).first()
            if existing is not None:
                raise _taken(name, removed=existing.removed_at is not None)
            conn.execute(insert(schema.users).values(
                name=name, roles=" ".join(sorted(r.value for r in granted)),
                addresses=" ".join(owned), password_hash=hashed, disabled=False,
                failed_logins=0, created_at=at, updated_at=at))
            audit.record(conn, actor, "user-add", {"user": name,
                                                   "roles": sorted(r.value for r in granted),
                                                   "addresses": list(owned)})
    except DuplicateRow:
        # Another process added the same name between our check and our insert.
        raise _taken(name, removed=False) from None
    return get_user(vault, name)


FIRST_ADMIN = "admin"


def add_first_administrator(vault: Vault, actor: str) -> str | None:
    """When the vault has never had a user, create ``admin`` (administrator and auditor)
    with a random password and return it (the only time it is shown); None otherwise."""
    with vault.engine.connect() as conn:
        if conn.execute(select(schema.users.c.id).limit(1)).first() is not None:
            return None
    password = secrets.token_urlsafe(18)
    add_user(vault, FIRST_ADMIN, ["admin", "auditor"], [], password, actor)
    return password


def list_users(vault: Vault, include_removed: bool = False) -> list[UserRecord]:
    """Every user by name; removed ones only when asked for."""
    query = select(schema.users).order_by(schema.users.c.name)
    if not include_removed:
        query = query.where(schema.users.c.removed_at.is_(None))
    with vault.engine.connect() as conn:
        return [record_of(row) for row in conn.execute(query)]


def get_user(vault: Vault, name: str) -> UserRecord:
    """One current (not removed) user by name; NotFoundError otherwise."""
    with vault.engine.connect() as conn:
        return record_of(live_row(conn, name))


def principal_of_user(vault: Vault, name: str) -> Principal:
    """The principal a signed-in user acts as now; AuthenticationError once they were disabled
    or removed (a web session checks this on every request, so disabling takes effect)."""
    with vault.engine.connect() as conn:
        row = conn.execute(select(schema.users)
                           .where(schema.users.c.name == name.strip().lower())).first()
    if row is None or row.removed_at is not None or row.disabled:
        raise AuthenticationError(REFUSED, reason="no such user or disabled")
    return record_of(row).principal()


def set_password(vault: Vault, name: str, password: str, actor: str) -> None:
    """Give a user a new password; this also ends a lock-out (fresh credentials)."""
    passwords.check_new(password, vault.settings.accounts.min_password_length)
    hashed = passwords.hash_password(password)
    with vault.engine.begin() as conn:
        row = live_row(conn, name)
        _update(conn, row.id, password_hash=hashed, failed_logins=0, locked_until=None)
        audit.record(conn, actor, "user-passwd", {"user": row.name})


def update_user(vault: Vault, name: str, actor: str, *, roles: Iterable[str] | None = None,
                addresses: Iterable[str] | None = None) -> UserRecord:
    """Replace a user's roles, addresses or both (what is None stays as it is)."""
    with vault.engine.begin() as conn:
        row = live_row(conn, name)
        before = record_of(row)
        granted = before.roles if roles is None else _roles(roles)
        owned = before.addresses if addresses is None else _addresses(addresses)
        _check_user_role(granted, owned)
        if Role.ADMIN not in granted:
            _keep_an_administrator(conn, row, "take the admin role from")
        _update(conn, row.id, roles=" ".join(sorted(r.value for r in granted)),
                addresses=" ".join(owned))
        audit.record(conn, actor, "user-update", {
            "user": row.name, "roles": sorted(r.value for r in granted),
            "addresses": list(owned), "roles_before": sorted(r.value for r in before.roles),
            "addresses_before": list(before.addresses)})
    return get_user(vault, name)


def disable_user(vault: Vault, name: str, actor: str) -> None:
    """Refuse every sign-in and token of this user until enabled again."""
    with vault.engine.begin() as conn:
        row = live_row(conn, name)
        _keep_an_administrator(conn, row, "disable")
        _update(conn, row.id, disabled=True)
        audit.record(conn, actor, "user-disable", {"user": row.name})


def enable_user(vault: Vault, name: str, actor: str) -> None:
    """Undo disable_user, and end a lock-out."""
    with vault.engine.begin() as conn:
        row = live_row(conn, name)
        _update(conn, row.id, disabled=False, failed_logins=0, locked_until=None)
        audit.record(conn, actor, "user-enable", {"user": row.name})


def remove_user(vault: Vault, name: str, actor: str) -> int:
    """Mark a user removed: secrets cleared, tokens revoked, the row kept for the audit trail.
    Returns how many tokens were revoked."""
    at = catalog.now()
    with vault.engine.begin() as conn:
        row = live_row(conn, name)
        _keep_an_administrator(conn, row, "remove")
        _update(conn, row.id, disabled=True, password_hash=None, totp_secret=None,
                totp_last_step=None, removed_at=at, updated_at=at)
        revoked = conn.execute(update(schema.api_tokens)
                               .where(schema.api_tokens.c.user_id == row.id,
                                      schema.api_tokens.c.revoked_at.is_(None))
                               .values(revoked_at=at)).rowcount
        audit.record(conn, actor, "user-remove", {"user": row.name, "tokens_revoked": revoked})
    return int(revoked)


def enable_totp(vault: Vault, name: str, actor: str) -> str:
    """Give the user a new TOTP secret (replacing any earlier one) and return its
    provisioning URI: the only time it is shown, since the catalog keeps it sealed."""
    secret = totp.new_secret()
    with vault.engine.begin() as conn:
        row = live_row(conn, name)
        sealed = vault.keyring.wrap_secret(secret.encode(), totp_label(row.id))
        _update(conn, row.id, totp_secret=sealed, totp_last_step=None)
        audit.record(conn, actor, "user-totp", {"user": row.name, "totp": "enabled"})
    return totp.provisioning_uri(secret, row.name, vault.settings.accounts.totp_issuer)


def disable_totp(vault: Vault, name: str, actor: str) -> None:
    """Sign-in by password alone again for this user."""
    with vault.engine.begin() as conn:
        row = live_row(conn, name)
        _update(conn, row.id, totp_secret=None, totp_last_step=None)
        audit.record(conn, actor, "user-totp", {"user": row.name, "totp": "disabled"})


# -- shared with signin.py and tokens.py -------------------------------------------------------

def check_name(name: str) -> str:
    """A user name as stored (lower case); InputError for one that cannot be a name."""
    cleaned = name.strip().lower()
    if not _NAME.fullmatch(cleaned):
        raise InputError(f"{name!r} cannot be a user name: use 1 to 64 letters, digits and "
                         ". _ @ + - (starting with a letter or digit).")
    return cleaned


def live_row(conn: Connection, name: str) -> Row[Any]:
    """The catalog row of a current user; NotFoundError for an unknown or removed name."""
    row = conn.execute(select(schema.users).where(
        schema.users.c.name == name.strip().lower(),
        schema.users.c.removed_at.is_(None))).first()
    if row is None:
        raise NotFoundError(f"there is no user named {name!r} (see 'mailvault user list').")
    return row


def record_of(row: Row[Any]) -> UserRecord:
    """A users row as a UserRecord."""
    return UserRecord(
        id=row.id, name=row.name, roles=parse_roles(row.roles.split()),
        addresses=tuple(row.addresses.split()), disabled=bool(row.disabled),
        totp=row.totp_secret is not None, failed_logins=row.failed_logins,
        locked_until=catalog.from_epoch(row.locked_until),
        last_login_at=catalog.from_epoch(row.last_login_at),
        created_at=catalog.from_epoch(row.created_at),
        updated_at=catalog.from_epoch(row.updated_at),
        removed_at=catalog.from_epoch(row.removed_at))


def totp_label(user_id: int) -> str:
    """The associated data a user's sealed TOTP secret is bound to (not movable to another)."""
    return f"user-totp:{user_id}"


def _keep_an_administrator(conn: Connection, row: Row[Any], doing: str) -> None:
    """Refuse (InputError) a change that would leave no enabled administrator: nobody could
    then manage users or sources from the web."""
    if Role.ADMIN not in record_of(row).roles or row.disabled:
        return
    others = conn.execute(select(schema.users.c.roles).where(
        schema.users.c.id != row.id, schema.users.c.removed_at.is_(None),
        schema.users.c.disabled.is_(False))).scalars()
    if not any(Role.ADMIN.value in roles.split() for roles in others):
        raise InputError(f"cannot {doing} {row.name}: they are the last enabled administrator "
                         "(make someone else admin first).")


def _update(conn: Connection, user_id: int, **values: Any) -> None:
    values.setdefault("updated_at", catalog.now())
    conn.execute(update(schema.users).where(schema.users.c.id == user_id).values(**values))


def _roles(names: Iterable[str]) -> frozenset[Role]:
    try:
        granted = parse_roles(names)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if not granted:
        raise InputError("a user needs at least one --role (admin, auditor, reviewer, user).")
    return granted


def _addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    owned = normal_addresses(addresses)
    for address in owned:
        if not _ADDRESS.fullmatch(address):
            raise InputError(f"{address!r} is not a mail address (local@domain).")
    return owned


def _check_user_role(roles: frozenset[Role], addresses: tuple[str, ...]) -> None:
    if Role.USER in roles and not addresses:
        raise InputError("a user with the role 'user' needs at least one --address: their "
                         "own mail is found by it.")


def _taken(name: str, removed: bool) -> ConfigError:
    if removed:
        return ConfigError(f"a user named {name!r} existed and was removed; names are never "
                           "reused, so that the audit log keeps naming one person: choose "
                           "another name.")
    return ConfigError(f"a user named {name!r} exists already.")
