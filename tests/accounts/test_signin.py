"""Sign-in: wrong passwords refused, lock-out after N failures (audited), TOTP with codes made
by pyotp (right accepted, wrong refused, replay refused)."""

from __future__ import annotations

import time

import pyotp
import pytest

from mailvault.accounts import users
from mailvault.accounts.signin import authenticate
from mailvault.accounts.users import UserRecord
from mailvault.errors import AuthenticationError, SecondFactorRequired
from mailvault.vault import Vault
from tests.accounts.conftest import (
    ADMIN,
    LOCKOUT_MINUTES,
    MAX_FAILED,
    PASSWORD,
    audit_log,
    user_column,
    vault_bytes,
)

WEB = "web:192.0.2.7"
REFUSED = ("sign-in refused: the name, password or code is wrong, or the account is locked or "
           "disabled.")


def refused(vault: Vault, name: str, password: str, code: str | None = None,
            at: float | None = None) -> str:
    """Sign in expecting a refusal; the reason kept for the audit log."""
    with pytest.raises(AuthenticationError) as caught:
        authenticate(vault, name, password, code, WEB, at=at)
    assert str(caught.value) == REFUSED
    return caught.value.reason


def test_the_right_password_signs_in(accounts_vault: Vault, alice: UserRecord) -> None:
    principal = authenticate(accounts_vault, "Alice", PASSWORD, None, WEB)
    assert (principal.name, principal.roles, principal.addresses) == (
        "alice", alice.roles, ("alice@example.org",))
    last = audit_log(accounts_vault)[-1]
    assert (last.actor, last.action, last.detail) == (WEB, "login",
                                                      {"user": "alice", "totp": False})
    assert users.get_user(accounts_vault, "alice").last_login_at is not None


def test_a_wrong_password_or_name_is_refused(accounts_vault: Vault, alice: UserRecord) -> None:
    assert refused(accounts_vault, "alice", PASSWORD + "!") == "wrong password"
    assert refused(accounts_vault, "mallory", PASSWORD) == "unknown user"
    assert refused(accounts_vault, "alice", "") == "wrong password"
    users.disable_user(accounts_vault, "alice", ADMIN)
    assert refused(accounts_vault, "alice", PASSWORD) == "disabled"
    details = [e.detail for e in audit_log(accounts_vault) if e.action == "login-failed"]
    assert details == [
        {"user": "alice", "reason": "wrong password", "failures": 1},
        {"user": "mallory", "reason": "unknown user"},
        {"user": "alice", "reason": "wrong password", "failures": 2},
        {"user": "alice", "reason": "disabled"},
    ]


def test_a_name_that_cannot_be_one_is_not_written_down(accounts_vault: Vault) -> None:
    # Someone typed their password into the name field.
    refused(accounts_vault, "My Secret Pass!", PASSWORD)
    assert audit_log(accounts_vault)[-1].detail == {"user": "(not a user name)",
                                                   "reason": "unknown user"}
    assert b"My Secret Pass" not in vault_bytes(accounts_vault)


def test_failures_in_a_row_lock_the_account(accounts_vault: Vault, alice: UserRecord) -> None:
    start = time.time()
    for _ in range(MAX_FAILED):
        assert refused(accounts_vault, "alice", "wrong password!", at=start) == "wrong password"
    log = audit_log(accounts_vault)
    assert [e.action for e in log[-2:]] == ["login-failed", "login-locked"]
    assert log[-1].detail["failures"] == MAX_FAILED and log[-1].actor == WEB
    # Locked: even the right password is refused, and not counted.
    assert refused(accounts_vault, "alice", PASSWORD, at=start + 60) == "locked"
    assert users.get_user(accounts_vault, "alice").locked_until is not None
    after = start + LOCKOUT_MINUTES * 60 + 1
    assert authenticate(accounts_vault, "alice", PASSWORD, None, WEB, at=after).name == "alice"
    assert user_column(accounts_vault, "alice", "failed_logins") == 0


def test_a_sign_in_starts_the_count_again(accounts_vault: Vault, alice: UserRecord) -> None:
    for _ in range(3):
        for _ in range(MAX_FAILED - 1):
            refused(accounts_vault, "alice", "wrong password!")
        authenticate(accounts_vault, "alice", PASSWORD, None, WEB)
    assert "login-locked" not in [e.action for e in audit_log(accounts_vault)]


def test_a_new_password_ends_a_lock(accounts_vault: Vault, alice: UserRecord) -> None:
    for _ in range(MAX_FAILED):
        refused(accounts_vault, "alice", "wrong password!")
    users.set_password(accounts_vault, "alice", "a brand new password", ADMIN)
    assert refused(accounts_vault, "alice", PASSWORD) == "wrong password"
    assert authenticate(accounts_vault, "alice", "a brand new password", None, WEB)


# -- TOTP ------------------------------------------------------------------------------------

def enable(vault: Vault) -> pyotp.TOTP:
    uri = users.enable_totp(vault, "alice", ADMIN)
    assert uri.startswith("otpauth://totp/mailvault:alice?")
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    return parsed


def test_the_totp_secret_is_sealed(accounts_vault: Vault, alice: UserRecord) -> None:
    otp = enable(accounts_vault)
    sealed = user_column(accounts_vault, "alice", "totp_secret")
    assert isinstance(sealed, str) and otp.secret not in sealed
    assert otp.secret.encode() not in vault_bytes(accounts_vault)
    assert users.get_user(accounts_vault, "alice").totp


def test_a_right_code_signs_in_and_a_wrong_one_is_refused(accounts_vault: Vault,
                                                          alice: UserRecord) -> None:
    otp = enable(accounts_vault)
    at = time.time()
    valid = {otp.at(at, counter_offset=offset) for offset in (-1, 0, 1)}
    wrong = next(code for code in (f"{n:06d}" for n in range(1_000_000)) if code not in valid)
    assert refused(accounts_vault, "alice", PASSWORD, wrong, at=at) == "wrong code"
    assert refused(accounts_vault, "alice", "wrong password!", otp.at(at), at=at) == \
        "wrong password"
    principal = authenticate(accounts_vault, "alice", PASSWORD, otp.at(at), WEB, at=at)
    assert principal.name == "alice"
    assert audit_log(accounts_vault)[-1].detail == {"user": "alice", "totp": True}


def test_a_code_one_step_away_is_accepted_two_is_not(accounts_vault: Vault,
                                                     alice: UserRecord) -> None:
    otp = enable(accounts_vault)
    at = time.time()
    assert refused(accounts_vault, "alice", PASSWORD, otp.at(at - 60), at=at) == "wrong code"
    assert authenticate(accounts_vault, "alice", PASSWORD, otp.at(at - 30), WEB, at=at)


def test_a_used_code_is_refused(accounts_vault: Vault, alice: UserRecord) -> None:
    otp = enable(accounts_vault)
    # Early in a 30-second step, so that a second later is still the same step (the step
    # before stays inside the one-step window).
    at = time.time() // 30 * 30 + 5
    code = otp.at(at)
    authenticate(accounts_vault, "alice", PASSWORD, code, WEB, at=at)
    assert refused(accounts_vault, "alice", PASSWORD, code, at=at + 1) == "code used before"
    # The step before the one used is over too, though still inside the window.
    assert refused(accounts_vault, "alice", PASSWORD, otp.at(at - 30), at=at + 1) == \
        "code used before"
    assert authenticate(accounts_vault, "alice", PASSWORD, otp.at(at + 30), WEB, at=at + 30)


def test_a_missing_code_is_asked_for_not_counted(accounts_vault: Vault,
                                                 alice: UserRecord) -> None:
    enable(accounts_vault)
    for _ in range(MAX_FAILED + 1):
        with pytest.raises(SecondFactorRequired):
            authenticate(accounts_vault, "alice", PASSWORD, None, WEB)
    assert user_column(accounts_vault, "alice", "failed_logins") == 0
    assert refused(accounts_vault, "alice", "wrong password!") == "wrong password"


def test_totp_can_be_turned_off(accounts_vault: Vault, alice: UserRecord) -> None:
    enable(accounts_vault)
    users.disable_totp(accounts_vault, "alice", ADMIN)
    assert authenticate(accounts_vault, "alice", PASSWORD, None, WEB).name == "alice"
