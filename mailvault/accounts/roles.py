"""Roles and what each may do: the one table every face's checks come from.

    admin     settings, sources, users, retention policies, lifecycle rules, monitoring,
              backups and upgrades;
              no message content (an admin who must read mail is also given auditor)
    auditor   search and read all mail, download it, legal holds, the audit log
    reviewer  the review queues assigned to them, nothing else
    user      their own mail only (a message where one of their addresses is the sender, a
              header recipient or an envelope recipient)

A principal with several roles may do what any of them allows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Role(StrEnum):
    """A role a person is given; stored by its value."""

    ADMIN = "admin"
    AUDITOR = "auditor"
    REVIEWER = "reviewer"
    USER = "user"


class Permission(StrEnum):
    """One thing a role may do. The value is a phrase that completes "may not ..."."""

    SEARCH_ALL = "search every message"
    READ_ALL = "read any message"
    DOWNLOAD = "download any message or attachment"
    HOLDS = "place, release or list legal holds"
    AUDIT_READ = "read the audit log"
    SETTINGS = "change the archive's settings"
    SOURCES = "manage the mail sources"
    USERS = "manage users, roles and tokens"
    RETENTION = "manage retention policies and disposition"
    LIFECYCLE = "manage tier moves and lifecycle rules"
    MONITOR = "see monitoring, status and verification"
    BACKUP = "back up, restore or upgrade the vault"
    REVIEW = "work a review queue"
    OWN_MAIL = "search, read and download their own mail"


ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset({
        Permission.SETTINGS, Permission.SOURCES, Permission.USERS, Permission.RETENTION,
        Permission.LIFECYCLE, Permission.MONITOR, Permission.BACKUP,
    }),
    Role.AUDITOR: frozenset({
        Permission.SEARCH_ALL, Permission.READ_ALL, Permission.DOWNLOAD, Permission.HOLDS,
        Permission.AUDIT_READ,
    }),
    Role.REVIEWER: frozenset({Permission.REVIEW}),
    Role.USER: frozenset({Permission.OWN_MAIL}),
}


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    """Everything a holder of these roles may do."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)


def roles_granting(permission: Permission) -> list[Role]:
    """The roles that allow ``permission``, in the table's order (for error sentences)."""
    return [role for role in Role if permission in ROLE_PERMISSIONS[role]]


def parse_roles(names: Iterable[str]) -> frozenset[Role]:
    """Role names (as typed or stored) as roles; ValueError names the first unknown one."""
    roles = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            known = ", ".join(role.value for role in Role)
            raise ValueError(f"there is no role {name!r} (roles: {known}).") from None
    return frozenset(roles)
