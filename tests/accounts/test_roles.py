"""The role table against issue 11's rules: every role against every permission."""

from __future__ import annotations

import pytest

from mailvault.accounts.principal import Principal, allows, local_operator, require
from mailvault.accounts.roles import Permission, Role, parse_roles
from mailvault.errors import PermissionDenied

P = Permission
# Written out from the issue, not from the code: the code must agree with this (and issue 15:
# backups, restores and upgrades are the administrator's).
ISSUE_11 = {
    Role.ADMIN: {P.SETTINGS, P.SOURCES, P.USERS, P.RETENTION, P.LIFECYCLE, P.MONITOR,
                 P.BACKUP},
    Role.AUDITOR: {P.SEARCH_ALL, P.READ_ALL, P.DOWNLOAD, P.HOLDS, P.AUDIT_READ},
    Role.REVIEWER: {P.REVIEW},
    Role.USER: {P.OWN_MAIL},
}
CONTENT = {P.SEARCH_ALL, P.READ_ALL, P.DOWNLOAD, P.OWN_MAIL}


def test_the_permissions_are_the_named_ones() -> None:
    assert {p.name for p in Permission} == {
        "SEARCH_ALL", "READ_ALL", "DOWNLOAD", "HOLDS", "AUDIT_READ", "SETTINGS", "SOURCES",
        "USERS", "RETENTION", "LIFECYCLE", "MONITOR", "REVIEW", "OWN_MAIL", "BACKUP"}
    assert {r.value for r in Role} == {"admin", "auditor", "reviewer", "user"}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_may_do_exactly_what_the_issue_says(role: Role,
                                                      permission: Permission) -> None:
    principal = Principal("someone", frozenset({role}), ("someone@example.org",))
    assert allows(principal, permission) is (permission in ISSUE_11[role])
    if permission in ISSUE_11[role]:
        require(principal, permission)
    else:
        with pytest.raises(PermissionDenied):
            require(principal, permission)


def test_an_admin_reads_no_content_unless_also_auditor() -> None:
    admin = Principal("ada", frozenset({Role.ADMIN}))
    assert not any(allows(admin, p) for p in CONTENT)
    both = Principal("ada", frozenset({Role.ADMIN, Role.AUDITOR}))
    assert all(allows(both, p) for p in ISSUE_11[Role.ADMIN] | ISSUE_11[Role.AUDITOR])


def test_several_roles_add_up() -> None:
    principal = Principal("rita", frozenset({Role.REVIEWER, Role.USER}))
    assert {p for p in Permission if allows(principal, p)} == {P.REVIEW, P.OWN_MAIL}


def test_the_refusal_is_one_sentence_naming_the_role_needed() -> None:
    with pytest.raises(PermissionDenied) as refused:
        require(Principal("ada", frozenset({Role.ADMIN})), P.AUDIT_READ)
    assert str(refused.value) == "ada may not read the audit log (that needs the role auditor)."


def test_the_local_operator_is_admin_and_auditor() -> None:
    operator = local_operator("root")
    assert operator.name == "cli:root"
    assert operator.is_admin and operator.is_auditor
    assert not operator.is_reviewer and not operator.is_user
    assert operator.permissions == frozenset(ISSUE_11[Role.ADMIN] | ISSUE_11[Role.AUDITOR])


def test_addresses_are_lower_case_and_unique() -> None:
    principal = Principal("bob", frozenset({Role.USER}),
                          (" Bob@Example.ORG", "bob@example.org", "b.two@example.org"))
    assert principal.addresses == ("bob@example.org", "b.two@example.org")
    assert principal.owns("BOB@example.org")
    assert not principal.owns("carol@example.org")


def test_role_names_are_checked() -> None:
    assert parse_roles(["Admin", "user", "admin"]) == {Role.ADMIN, Role.USER}
    with pytest.raises(ValueError, match="there is no role 'boss'"):
        parse_roles(["boss"])
