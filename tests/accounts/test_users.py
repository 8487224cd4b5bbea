"""Users in the catalog: Argon2id hashes (never the password), validation, disable, remove
(marked, never deleted, name never reused)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mailvault.accounts import users
from mailvault.accounts.roles import Role
from mailvault.accounts.users import UserRecord
from mailvault.errors import AuthenticationError, ConfigError, InputError, NotFoundError
from mailvault.vault import Vault
from tests.accounts.conftest import ADMIN, PASSWORD, user_column, vault_bytes


def test_only_an_argon2id_hash_is_stored(accounts_vault: Vault, alice: UserRecord) -> None:
    stored = user_column(accounts_vault, "alice", "password_hash")
    assert isinstance(stored, str) and stored.startswith("$argon2id$")
    everything = vault_bytes(accounts_vault)
    assert PASSWORD.encode() not in everything
    assert stored.encode() in everything  # the search above looked where the hash is


def test_a_user_is_stored_as_given(accounts_vault: Vault, alice: UserRecord) -> None:
    assert alice.name == "alice"
    assert alice.roles == {Role.AUDITOR}
    assert alice.addresses == ("alice@example.org",)
    listed = users.list_users(accounts_vault)
    assert [u.name for u in listed] == ["alice"]
    assert users.principal_of_user(accounts_vault, "Alice").addresses == ("alice@example.org",)


@pytest.mark.parametrize(("name", "roles", "addresses", "password", "sentence"), [
    ("bad name", ["user"], ["a@example.org"], PASSWORD, "cannot be a user name"),
    ("cli:root", ["admin"], [], PASSWORD, "cannot be a user name"),
    ("bob", [], [], PASSWORD, "needs at least one --role"),
    ("bob", ["boss"], [], PASSWORD, "there is no role 'boss'"),
    ("bob", ["user"], [], PASSWORD, "needs at least one --address"),
    ("bob", ["user"], ["not an address"], PASSWORD, "is not a mail address"),
    ("bob", ["admin"], [], "short", "at least 12 characters"),
])
def test_a_wrong_user_is_refused_in_one_sentence(
        accounts_vault: Vault, name: str, roles: list[str], addresses: list[str], password: str,
        sentence: str) -> None:
    with pytest.raises(InputError, match=sentence):
        users.add_user(accounts_vault, name, roles, addresses, password, ADMIN)
    assert users.list_users(accounts_vault, include_removed=True) == []


def test_a_name_is_taken_once(accounts_vault: Vault, alice: UserRecord) -> None:
    with pytest.raises(ConfigError, match="exists already"):
        users.add_user(accounts_vault, "ALICE", ["admin"], [], PASSWORD, ADMIN)


def test_a_disabled_user_is_no_principal_until_enabled(accounts_vault: Vault,
                                                       alice: UserRecord) -> None:
    users.disable_user(accounts_vault, "alice", ADMIN)
    with pytest.raises(AuthenticationError):
        users.principal_of_user(accounts_vault, "alice")
    assert users.get_user(accounts_vault, "alice").status(datetime.now(UTC)) == "disabled"
    users.enable_user(accounts_vault, "alice", ADMIN)
    assert users.principal_of_user(accounts_vault, "alice").name == "alice"


def test_removing_keeps_the_row_and_clears_the_secrets(accounts_vault: Vault,
                                                       alice: UserRecord) -> None:
    users.enable_totp(accounts_vault, "alice", ADMIN)
    users.remove_user(accounts_vault, "alice", ADMIN)
    assert users.list_users(accounts_vault) == []
    kept = users.list_users(accounts_vault, include_removed=True)
    assert [(u.name, u.status(datetime.now(UTC)), u.roles) for u in kept] == [
        ("alice", "removed", {Role.AUDITOR})]
    assert user_column(accounts_vault, "alice", "password_hash") is None
    assert user_column(accounts_vault, "alice", "totp_secret") is None
    with pytest.raises(NotFoundError):
        users.remove_user(accounts_vault, "alice", ADMIN)
    with pytest.raises(AuthenticationError):
        users.principal_of_user(accounts_vault, "alice")
    with pytest.raises(ConfigError, match="names are never reused"):
        users.add_user(accounts_vault, "alice", ["admin"], [], PASSWORD, ADMIN)


def test_changes_to_an_unknown_user_say_so(accounts_vault: Vault) -> None:
    for change in (users.disable_user, users.enable_user, users.remove_user,
                   users.enable_totp, users.disable_totp):
        with pytest.raises(NotFoundError, match="there is no user named 'nobody'"):
            change(accounts_vault, "nobody", ADMIN)
    with pytest.raises(NotFoundError):
        users.set_password(accounts_vault, "nobody", PASSWORD, ADMIN)


def test_roles_and_addresses_can_change(accounts_vault: Vault, alice: UserRecord) -> None:
    changed = users.update_user(accounts_vault, "alice", ADMIN, roles=["user", "reviewer"])
    assert changed.roles == {Role.USER, Role.REVIEWER}
    assert changed.addresses == ("alice@example.org",)
    changed = users.update_user(accounts_vault, "alice", ADMIN,
                                addresses=["a.smith@example.org", "Alice@Example.org"])
    assert changed.addresses == ("a.smith@example.org", "alice@example.org")
    assert users.principal_of_user(accounts_vault, "alice").owns("a.smith@example.org")
    with pytest.raises(InputError, match="needs at least one --address"):
        users.update_user(accounts_vault, "alice", ADMIN, addresses=[])
    with pytest.raises(InputError, match="needs at least one --role"):
        users.update_user(accounts_vault, "alice", ADMIN, roles=[])
    assert users.get_user(accounts_vault, "alice").roles == {Role.USER, Role.REVIEWER}
