"""API bearer tokens: made for a user, shown once, kept only as their SHA-256.

Why a plain SHA-256 and not Argon2 as for passwords: a token is 32 random bytes (256 bits),
so nobody can find it from its hash by guessing, however fast the hash; a slow, salted hash
exists to protect secrets people choose, which are guessable. An unsalted fast hash also lets
every API request find its token by an indexed lookup instead of an Argon2 check per request.

A token acts as its user, with the user's roles as they are at each request: disabling or
removing the user stops every token of theirs at once.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from mailvault.accounts.principal import Principal
from mailvault.accounts.users import REFUSED, live_row, record_of
from mailvault.errors import AuthenticationError, InputError, NotFoundError
from mailvault.store import audit, catalog, schema
from mailvault.vault import Vault

PREFIX = "mvt_"
TOKEN_BYTES = 32
# last_used_at is written at most this often per token, so that a busy script does not turn
# every API read into a catalog write.
LAST_USED_EVERY_S = 60


@dataclass(frozen=True)
class NewToken:
    """A token just made: the only time ``token`` itself exists outside its holder's hands."""

    id: int
    user: str
    token: str
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenRecord:
    """A token as listed: everything but the token."""

    id: int
    user: str
    created_by: str
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def status(self, at: datetime) -> str:
        """revoked, expired or active (at the time given)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"

    def to_json(self, at: datetime) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "user": self.user, "status": self.status(at),
                "created_by": self.created_by, "created_at": iso(self.created_at),
                "expires_at": iso(self.expires_at), "revoked_at": iso(self.revoked_at),
                "last_used_at": iso(self.last_used_at)}


def token_hash(token: str) -> str:
    """What the catalog keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(vault: Vault, user: str, expires_days: int | None, actor: str) -> NewToken:
    """Make a token for a current user; ``expires_days`` None takes ``[accounts]
    token_expires_days``, 0 makes a token that never expires."""
    days = vault.settings.accounts.token_expires_days if expires_days is None else expires_days
    if days < 0:
        raise InputError("--expires must be a number of days, 0 for a token that never "
                         "expires.")
    token = PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    at = catalog.now()
    expires_at = at + days * 86400 if days else None
    with vault.engine.begin() as conn:
        row = live_row(conn, user)
        token_id = conn.execute(insert(schema.api_tokens).values(
            user_id=row.id, token_hash=token_hash(token), created_by=actor, created_at=at,
            expires_at=expires_at)).inserted_primary_key
        assert token_id is not None
        audit.record(conn, actor, "token-create", {
            "id": int(token_id[0]), "user": row.name,
            "expires_at": _iso(expires_at)})
    return NewToken(id=int(token_id[0]), user=row.name, token=token,
                    expires_at=catalog.from_epoch(expires_at))


def list_tokens(vault: Vault) -> list[TokenRecord]:
    """Every token ever made, oldest first (revoked and expired ones included)."""
    tokens, users = schema.api_tokens, schema.users
    query = (select(tokens, users.c.name).join(users, users.c.id == tokens.c.user_id)
             .order_by(tokens.c.id))
    with vault.engine.connect() as conn:
        return [TokenRecord(id=r.id, user=r.name, created_by=r.created_by,
                            created_at=catalog.from_epoch(r.created_at),
                            expires_at=catalog.from_epoch(r.expires_at),
                            revoked_at=catalog.from_epoch(r.revoked_at),
                            last_used_at=catalog.from_epoch(r.last_used_at))
                for r in conn.execute(query)]


def revoke_token(vault: Vault, token_id: int, actor: str) -> bool:
    """Revoke a token by id; False when it was revoked already (nothing changes then)."""
    tokens, users = schema.api_tokens, schema.users
    with vault.engine.begin() as conn:
        row = conn.execute(select(tokens.c.revoked_at, users.c.name)
                           .join(users, users.c.id == tokens.c.user_id)
                           .where(tokens.c.id == token_id)).first()
        if row is None:
            raise NotFoundError(f"there is no token {token_id} (see 'mailvault token list').")
        if row.revoked_at is not None:
            return False
        conn.execute(update(tokens).where(tokens.c.id == token_id)
                     .values(revoked_at=catalog.now()))
        audit.record(conn, actor, "token-revoke", {"id": token_id, "user": row.name})
    return True


def principal_for_token(vault: Vault, token: str, *, at: float | None = None) -> Principal:
    """The principal a bearer token acts as; AuthenticationError for an unknown, revoked or
    expired token, or one whose user is disabled or removed. ``at``: the time (default now)."""
    when = time.time() if at is None else at
    if not token.startswith(PREFIX):
        raise AuthenticationError(REFUSED, reason="not a token")
    tokens, users = schema.api_tokens, schema.users
    with vault.engine.connect() as conn:
        # Labelled: users has an id (and record_of reads it) as well.
        row = conn.execute(select(tokens.c.id.label("token_id"), tokens.c.expires_at,
                                  tokens.c.revoked_at, tokens.c.last_used_at, users)
                           .join(users, users.c.id == tokens.c.user_id)
                           .where(tokens.c.token_hash == token_hash(token))).first()
    if row is None:
        raise AuthenticationError(REFUSED, reason="unknown token")
    if row.revoked_at is not None:
        raise AuthenticationError(REFUSED, reason="token revoked")
    if row.expires_at is not None and row.expires_at <= when:
        raise AuthenticationError(REFUSED, reason="token expired")
    if row.removed_at is not None or row.disabled:
        raise AuthenticationError(REFUSED, reason="user disabled")
    if row.last_used_at is None or row.last_used_at <= when - LAST_USED_EVERY_S:
        with vault.engine.begin() as conn:
            conn.execute(update(tokens).where(tokens.c.id == row.token_id)
                         .values(last_used_at=int(when)))
    return record_of(row).principal()


def _iso(epoch: int | None) -> str | None:
    value = catalog.from_epoch(epoch)
    return value.isoformat() if value else None
