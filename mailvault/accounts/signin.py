"""Sign-in by name, password and (when the account has one) a TOTP code, with a lock-out.

After ``[accounts] max_failed_logins`` failures in a row an account refuses every sign-in for
``lockout_minutes``, the right password included (it is not checked against the account
meanwhile, so a guesser learns nothing). Every refusal is audited (``login-failed`` with the
reason), a lock too (``login-locked``), and so is a sign-in (``login``); the person is told
one sentence that never says which part was wrong.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, NoReturn

from sqlalchemy import Row, select, update

from mailvault.accounts import passwords, totp
from mailvault.accounts.principal import Principal
from mailvault.accounts.users import REFUSED, check_name, record_of, totp_label
from mailvault.errors import AuthenticationError, InputError, SecondFactorRequired
from mailvault.store import audit, schema
from mailvault.vault import Vault

NOT_A_NAME = "(not a user name)"


def authenticate(vault: Vault, name: str, password: str, totp_code: str | None, actor: str,
                 *, at: float | None = None) -> Principal:
    """The principal of a user who proved who they are; AuthenticationError otherwise.

    ``actor`` says where the attempt came from (``web:203.0.113.5``, say) for the audit log.
    SecondFactorRequired means the password was right and a code is needed: ask for it and
    call again with both (that is not counted as a failure). ``at`` is the time of the attempt
    (default: now).
    """
    when = time.time() if at is None else at
    cleaned = name.strip().lower()
    with vault.engine.connect() as conn:
        row = conn.execute(select(schema.users).where(schema.users.c.name == cleaned)).first()
    # Every refusal costs one Argon2 check, like a wrong password, so that the time taken
    # does not tell a guesser which names exist or are locked.
    if row is None or row.removed_at is not None:
        passwords.verify(None, password)
        _audit_refusal(vault, actor, _loggable(cleaned), "unknown user")
    if row.locked_until is not None and row.locked_until > when:
        passwords.verify(None, password)
        _audit_refusal(vault, actor, row.name, "locked")
    if row.disabled:
        passwords.verify(None, password)
        _audit_refusal(vault, actor, row.name, "disabled")
    checked = passwords.verify(row.password_hash, password)
    if not checked.ok:
        _count_failure(vault, actor, row, "wrong password", when)
    step = _second_factor(vault, actor, row, totp_code, when)
    fresh_hash = passwords.hash_password(password) if checked.needs_rehash else None
    with vault.engine.begin() as conn:
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None,
                                  "last_login_at": int(when)}
        if fresh_hash is not None:
            values["password_hash"] = fresh_hash
        query = update(schema.users).where(schema.users.c.id == row.id)
        if step is not None:
            values["totp_last_step"] = step
            # The step is claimed in the same statement that checks it, so two sign-ins racing
            # with one code cannot both win.
            query = query.where((schema.users.c.totp_last_step.is_(None))
                                | (schema.users.c.totp_last_step < step))
        claimed = conn.execute(query.values(**values)).rowcount
        if claimed:
            audit.record(conn, actor, "login", {"user": row.name,
                                                "totp": step is not None})
    if not claimed:
        _count_failure(vault, actor, row, "code used before", when)
    return record_of(row).principal()


def authenticate_by_address(vault: Vault, address: str, provider: str, actor: str) -> Principal:
    """The principal of the one current user whose own addresses include ``address``, which
    an identity provider (``provider``) has vouched for; AuthenticationError when none or
    more than one has it, or that user is disabled. Nobody is ever created here: an
    administrator makes the account first."""
    wanted = address.strip().lower()
    users = schema.users
    with vault.engine.connect() as conn:
        rows = [r for r in conn.execute(select(users).where(users.c.removed_at.is_(None)))
                if wanted and wanted in r.addresses.split()]
    if len(rows) != 1:
        _audit_refusal(vault, actor, NOT_A_NAME, f"{provider}: {len(rows)} users have the "
                       f"address {wanted[:100]!r}")
    row = rows[0]
    if row.disabled:
        _audit_refusal(vault, actor, row.name, f"{provider}: disabled")
    with vault.engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == row.id)
                     .values(last_login_at=int(time.time())))
        audit.record(conn, actor, "login", {"user": row.name, "provider": provider,
                                            "address": wanted})
    return record_of(row).principal()


def audit_address_throttled(vault: Vault, actor: str, attempts: int, until: float) -> None:
    """Record that a client address made too many sign-in attempts and is refused until
    ``until`` (whatever names it tries)."""
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "login-throttled", {
            "attempts": attempts, "until": datetime.fromtimestamp(until, UTC).isoformat()})


def _second_factor(vault: Vault, actor: str, row: Row[Any], code: str | None,
                   when: float) -> int | None:
    """The TOTP step the code proves (None for an account without TOTP)."""
    if row.totp_secret is None:
        return None
    if not code:
        raise SecondFactorRequired("a code from the authenticator app is needed as well.",
                                   reason="code needed")
    secret = vault.keyring.unwrap_secret(row.totp_secret, totp_label(row.id)).decode()
    step = totp.matching_step(secret, code, when)
    if step is None:
        _count_failure(vault, actor, row, "wrong code", when)
    if row.totp_last_step is not None and step <= row.totp_last_step:
        _count_failure(vault, actor, row, "code used before", when)
    return step


def _count_failure(vault: Vault, actor: str, row: Row[Any], reason: str,
                   when: float) -> NoReturn:
    """Count one failure, lock the account when it reaches the limit, audit, and refuse."""
    limit = vault.settings.accounts.max_failed_logins
    with vault.engine.begin() as conn:
        users = schema.users
        conn.execute(update(users).where(users.c.id == row.id)
                     .values(failed_logins=users.c.failed_logins + 1))
        failures = int(conn.execute(select(users.c.failed_logins)
                                    .where(users.c.id == row.id)).scalar_one())
        audit.record(conn, actor, "login-failed", {"user": row.name, "reason": reason,
                                                   "failures": failures})
        if limit > 0 and failures >= limit:
            until = int(when) + vault.settings.accounts.lockout_minutes * 60
            # The count starts again, so the account gets its full set of tries after the lock.
            conn.execute(update(users).where(users.c.id == row.id)
                         .values(failed_logins=0, locked_until=until))
            audit.record(conn, actor, "login-locked", {
                "user": row.name, "failures": failures,
                "until": datetime.fromtimestamp(until, UTC).isoformat()})
    raise AuthenticationError(REFUSED, reason=reason)


def _audit_refusal(vault: Vault, actor: str, name: str, reason: str) -> NoReturn:
    """Audit a refusal that does not count toward a lock-out, and refuse."""
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "login-failed", {"user": name, "reason": reason})
    raise AuthenticationError(REFUSED, reason=reason)


def _loggable(name: str) -> str:
    """A name as typed, for the audit log, unless it cannot be a user name: then it may well
    be a password typed into the wrong field, and is not written down."""
    try:
        return check_name(name)
    except InputError:
        return NOT_A_NAME
