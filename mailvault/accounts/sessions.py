"""Web sessions kept in the catalog (``web_sessions``): the browser holds a random token, the
catalog only its SHA-256 (as for API tokens: 256 random bits need no slow hash).

A session ends when its user signs out, after ``idle`` seconds unused, ``max_age`` seconds
after sign-in, or as soon as its user is disabled or removed (checked on every request).
Each session has its own CSRF token, which every state-changing form carries back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, insert, select, update

from mailvault.accounts.principal import Principal
from mailvault.accounts.users import live_row, record_of
from mailvault.errors import AuthenticationError
from mailvault.store import audit, schema
from mailvault.vault import Vault

TOKEN_BYTES = 32
# seen_at is written at most this often per session (the idle timeout is that coarse).
SEEN_EVERY_S = 30


@dataclass(frozen=True)
class NewSession:
    """A session just started: the only time its token exists outside the browser."""

    token: str
    csrf: str


@dataclass(frozen=True)
class Session:
    """A live session as a request sees it."""

    id: int
    principal: Principal
    csrf: str
    remote_images: frozenset[int]

    def csrf_matches(self, given: str) -> bool:
        return hmac.compare_digest(self.csrf.encode(), given.encode())


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(vault: Vault, user: str, client: str, *, at: float | None = None) -> NewSession:
    """Start a session for a user who has just signed in."""
    when = int(time.time() if at is None else at)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    csrf = secrets.token_urlsafe(TOKEN_BYTES)
    with vault.engine.begin() as conn:
        row = live_row(conn, user)
        conn.execute(insert(schema.web_sessions).values(
            token_hash=_hash(token), user_id=row.id, csrf=csrf, client=client[:100],
            created_at=when, seen_at=when, remote_images=""))
    return NewSession(token, csrf)


def current(vault: Vault, token: str, idle_s: int, max_age_s: int, *,
            at: float | None = None) -> Session:
    """The session a token names, if it is still live; AuthenticationError otherwise (an
    expired session, or one whose user was disabled or removed, is ended here)."""
    return _live(vault, schema.web_sessions.c.token_hash == _hash(token), idle_s, max_age_s,
                 at)


def by_id(vault: Vault, session_id: int, idle_s: int, max_age_s: int, *,
          at: float | None = None) -> Session:
    """A live session by its id, for a link that carries its own proof of being made for
    that session (a message part inside the sandboxed mail frame, which has no cookie)."""
    return _live(vault, schema.web_sessions.c.id == session_id, idle_s, max_age_s, at)


def _live(vault: Vault, which: ColumnElement[bool], idle_s: int, max_age_s: int,
          at: float | None) -> Session:
    when = int(time.time() if at is None else at)
    sessions, users = schema.web_sessions, schema.users
    with vault.engine.connect() as conn:
        row = conn.execute(select(sessions.c.id.label("session_id"), sessions.c.csrf,
                                  sessions.c.created_at.label("session_created"),
                                  sessions.c.seen_at, sessions.c.ended_at,
                                  sessions.c.remote_images, users)
                           .join(users, users.c.id == sessions.c.user_id)
                           .where(which)).first()
    if row is None or row.ended_at is not None:
        raise AuthenticationError("you are not signed in.", reason="no session")
    reason = ""
    if row.removed_at is not None or row.disabled:
        reason = "user disabled"
    elif when - row.seen_at > idle_s:
        reason = "idle"
    elif when - row.session_created > max_age_s:
        reason = "too old"
    if reason:
        _end(vault, row.session_id, row.name, reason, when)
        raise AuthenticationError("your session has ended: please sign in again.",
                                  reason=reason)
    if when - row.seen_at >= SEEN_EVERY_S:
        with vault.engine.begin() as conn:
            conn.execute(update(sessions).where(sessions.c.id == row.session_id)
                         .values(seen_at=when))
    images = frozenset(int(v) for v in row.remote_images.split())
    return Session(row.session_id, record_of(row).principal(), row.csrf, images)


def end(vault: Vault, session: Session, *, at: float | None = None) -> None:
    """Sign out: the session's token is worthless from now on (audited)."""
    _end(vault, session.id, session.principal.name, "signed out",
         int(time.time() if at is None else at))


def _end(vault: Vault, session_id: int, user: str, reason: str, when: int) -> None:
    sessions = schema.web_sessions
    with vault.engine.begin() as conn:
        ended = conn.execute(update(sessions).where(sessions.c.id == session_id,
                                                    sessions.c.ended_at.is_(None))
                             .values(ended_at=when)).rowcount
        if ended:
            audit.record(conn, user, "logout", {"session": session_id, "reason": reason})


def allow_remote_images(vault: Vault, session: Session, message_id: int) -> None:
    """Remember that this session chose to load one message's remote images."""
    ids = sorted(session.remote_images | {message_id})
    sessions = schema.web_sessions
    with vault.engine.begin() as conn:
        conn.execute(update(sessions).where(sessions.c.id == session.id)
                     .values(remote_images=" ".join(str(i) for i in ids)))

