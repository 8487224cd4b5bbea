"""Every account change is audited in the same transaction, and no entry holds a secret."""

from __future__ import annotations

import time

import pyotp
import pytest

from mailvault.accounts import tokens, users
from mailvault.accounts.signin import authenticate
from mailvault.errors import AuthenticationError
from mailvault.store import audit
from mailvault.vault import Vault
from tests.accounts.conftest import ADMIN, MAX_FAILED, PASSWORD, audit_log, user_column

NEW_PASSWORD = "another long passphrase"


def test_every_change_is_audited_without_a_secret(accounts_vault: Vault) -> None:
    vault = accounts_vault
    users.add_user(vault, "bob", ["user"], ["bob@example.org"], PASSWORD, ADMIN)
    users.set_password(vault, "bob", NEW_PASSWORD, ADMIN)
    users.update_user(vault, "bob", ADMIN, roles=["user", "reviewer"])
    uri = users.enable_totp(vault, "bob", ADMIN)
    secret = pyotp.parse_uri(uri).secret
    at = time.time()
    authenticate(vault, "bob", NEW_PASSWORD, pyotp.TOTP(secret).at(at), "web:x", at=at)
    for _ in range(MAX_FAILED):
        with pytest.raises(AuthenticationError):
            authenticate(vault, "bob", PASSWORD, None, "web:x")
    made = tokens.create_token(vault, "bob", 7, ADMIN)
    tokens.revoke_token(vault, made.id, ADMIN)
    users.disable_user(vault, "bob", ADMIN)
    users.enable_user(vault, "bob", ADMIN)
    hashed = user_column(vault, "bob", "password_hash")
    users.remove_user(vault, "bob", ADMIN)

    log = audit_log(vault)
    assert [e.action for e in log] == [
        "user-add", "user-passwd", "user-update", "user-totp", "login",
        *(["login-failed"] * MAX_FAILED), "login-locked",
        "token-create", "token-revoke", "user-disable", "user-enable", "user-remove"]
    assert {e.actor for e in log if not e.action.startswith("login")} == {ADMIN}
    assert all(e.detail["user"] == "bob" for e in log)
    assert log[0].detail == {"user": "bob", "roles": ["user"], "addresses": ["bob@example.org"]}
    assert log[2].detail == {"user": "bob", "roles": ["reviewer", "user"],
                             "addresses": ["bob@example.org"], "roles_before": ["user"],
                             "addresses_before": ["bob@example.org"]}
    assert log[-1].detail == {"user": "bob", "tokens_revoked": 0}
    text = "\n".join(f"{e.actor} {e.action} {e.detail}" for e in log)
    for secret_text in (PASSWORD, NEW_PASSWORD, secret, uri, made.token, made.token[4:],
                        str(hashed)):
        assert secret_text not in text
    with vault.engine.connect() as conn:
        assert audit.verify(conn) == []
