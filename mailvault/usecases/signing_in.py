"""Signing in and out of the web: the person proves who they are (password and TOTP code, or
an identity provider's word for their address) and gets a session.

There is no principal yet, so nothing is checked against roles: the accounts capability
checks the credentials, counts failures against the account (its lock-out) and audits every
attempt (``login``, ``login-failed``, ``logout``); a lock-out of a client address, which the
web counts, is audited here (``login-throttled``).
"""

from __future__ import annotations

from mailvault.accounts import sessions, signin
from mailvault.accounts.sessions import NewSession, Session
from mailvault.vault import Vault


def sign_in(vault: Vault, name: str, password: str, code: str | None, client: str
            ) -> NewSession:
    """A new session for a user whose password (and TOTP code, when the account has one) is
    right; AuthenticationError otherwise, SecondFactorRequired when only the code is
    missing. ``client`` is the address the attempt came from (audited as ``web:ADDRESS``)."""
    principal = signin.authenticate(vault, name, password, code, f"web:{client}")
    return sessions.start(vault, principal.name, client)


def sign_in_by_address(vault: Vault, address: str, provider: str, client: str) -> NewSession:
    """A new session for the one current user who has ``address``, which the identity
    provider ``provider`` has vouched for (nobody is created)."""
    principal = signin.authenticate_by_address(vault, address, provider, f"web:{client}")
    return sessions.start(vault, principal.name, client)


def address_throttled(vault: Vault, client: str, attempts: int, until: float) -> None:
    """Record that a client address made ``attempts`` sign-in attempts and is refused until
    ``until`` (epoch seconds)."""
    signin.audit_address_throttled(vault, f"web:{client}", attempts, until)


def sign_out(vault: Vault, session: Session) -> None:
    """End a session (audited)."""
    sessions.end(vault, session)
