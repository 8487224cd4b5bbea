"""API tokens: shown once, only their SHA-256 kept, expiry, revocation, and a disabled or
removed user's tokens refused."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime

import pytest

from mailvault.accounts import tokens, users
from mailvault.accounts.users import UserRecord
from mailvault.errors import AuthenticationError, InputError, NotFoundError
from mailvault.vault import Vault
from tests.accounts.conftest import ADMIN, vault_bytes


def reason_refused(vault: Vault, token: str, at: float | None = None) -> str:
    with pytest.raises(AuthenticationError) as caught:
        tokens.principal_for_token(vault, token, at=at)
    return caught.value.reason


def test_a_token_acts_as_its_user(accounts_vault: Vault, alice: UserRecord) -> None:
    made = tokens.create_token(accounts_vault, "alice", None, ADMIN)
    assert made.token.startswith("mvt_") and len(made.token) > 40
    principal = tokens.principal_for_token(accounts_vault, made.token)
    assert (principal.name, principal.roles, principal.addresses) == (
        "alice", alice.roles, alice.addresses)
    listed = tokens.list_tokens(accounts_vault)
    assert [(t.id, t.user, t.created_by, t.status(datetime.now(UTC))) for t in listed] == [
        (made.id, "alice", ADMIN, "active")]
    assert listed[0].last_used_at is not None


def test_only_the_hash_is_kept(accounts_vault: Vault, alice: UserRecord) -> None:
    made = tokens.create_token(accounts_vault, "alice", 30, ADMIN)
    everything = vault_bytes(accounts_vault)
    assert made.token.encode() not in everything
    assert made.token[4:].encode() not in everything
    assert hashlib.sha256(made.token.encode()).hexdigest().encode() in everything
    assert made.token not in repr(tokens.list_tokens(accounts_vault))


def test_expiry(accounts_vault: Vault, alice: UserRecord) -> None:
    start = time.time()
    made = tokens.create_token(accounts_vault, "alice", 1, ADMIN)
    assert made.expires_at is not None
    assert abs(made.expires_at.timestamp() - (start + 86400)) < 60
    assert tokens.principal_for_token(accounts_vault, made.token, at=start + 86000)
    assert reason_refused(accounts_vault, made.token, at=start + 86400 + 60) == "token expired"
    forever = tokens.create_token(accounts_vault, "alice", 0, ADMIN)
    assert forever.expires_at is None
    assert tokens.principal_for_token(accounts_vault, forever.token, at=start + 10 * 365 * 86400)
    default = tokens.create_token(accounts_vault, "alice", None, ADMIN)
    assert default.expires_at is not None
    days = accounts_vault.settings.accounts.token_expires_days
    assert abs(default.expires_at.timestamp() - (start + days * 86400)) < 60
    with pytest.raises(InputError):
        tokens.create_token(accounts_vault, "alice", -1, ADMIN)


def test_revoke(accounts_vault: Vault, alice: UserRecord) -> None:
    kept = tokens.create_token(accounts_vault, "alice", None, ADMIN)
    made = tokens.create_token(accounts_vault, "alice", None, ADMIN)
    assert tokens.revoke_token(accounts_vault, made.id, ADMIN) is True
    assert reason_refused(accounts_vault, made.token) == "token revoked"
    assert tokens.revoke_token(accounts_vault, made.id, ADMIN) is False
    assert tokens.principal_for_token(accounts_vault, kept.token).name == "alice"
    with pytest.raises(NotFoundError):
        tokens.revoke_token(accounts_vault, 999, ADMIN)


def test_a_disabled_or_removed_users_token_is_refused(accounts_vault: Vault,
                                                      alice: UserRecord) -> None:
    made = tokens.create_token(accounts_vault, "alice", None, ADMIN)
    users.disable_user(accounts_vault, "alice", ADMIN)
    assert reason_refused(accounts_vault, made.token) == "user disabled"
    users.enable_user(accounts_vault, "alice", ADMIN)
    assert tokens.principal_for_token(accounts_vault, made.token).name == "alice"
    assert users.remove_user(accounts_vault, "alice", ADMIN) == 1
    assert reason_refused(accounts_vault, made.token) == "token revoked"
    with pytest.raises(NotFoundError):
        tokens.create_token(accounts_vault, "alice", None, ADMIN)


def test_a_made_up_token_is_refused(accounts_vault: Vault, alice: UserRecord) -> None:
    made = tokens.create_token(accounts_vault, "alice", None, ADMIN)
    altered = made.token[:-1] + ("B" if made.token.endswith("A") else "A")
    assert reason_refused(accounts_vault, altered) == "unknown token"
    assert reason_refused(accounts_vault, made.token[4:]) == "not a token"
    assert reason_refused(accounts_vault, "") == "not a token"
