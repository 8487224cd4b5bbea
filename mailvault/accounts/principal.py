"""Who is acting: a Principal (name, roles, own addresses), and the checks made against it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mailvault.accounts.roles import Permission, Role, permissions_of, roles_granting
from mailvault.errors import PermissionDenied


@dataclass(frozen=True)
class Principal:
    """A person (or the local operator) as the use cases see them.

    ``name`` is also the actor written to the audit log. ``addresses`` are the person's own
    mail addresses, lower-cased and without repeats, which is how the user role finds "their
    own mail".
    """

    name: str
    roles: frozenset[Role]
    addresses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Set through object.__setattr__ because the dataclass is frozen: normalising here
        # means no caller can build a principal whose addresses miss a match by case.
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(self, "addresses", normal_addresses(self.addresses))

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def is_auditor(self) -> bool:
        return Role.AUDITOR in self.roles

    @property
    def is_reviewer(self) -> bool:
        return Role.REVIEWER in self.roles

    @property
    def is_user(self) -> bool:
        return Role.USER in self.roles

    @property
    def reads_mail(self) -> bool:
        """Whether any of their roles searches mail (all of it, their own, or a queue's):
        an administrator alone does not."""
        return bool(self.permissions & {Permission.SEARCH_ALL, Permission.OWN_MAIL,
                                        Permission.REVIEW})

    @property
    def permissions(self) -> frozenset[Permission]:
        """Everything this principal's roles allow."""
        return permissions_of(self.roles)

    def owns(self, address: str) -> bool:
        """Whether ``address`` is one of this principal's own addresses."""
        return address.strip().lower() in self.addresses


def normal_addresses(addresses: Iterable[str]) -> tuple[str, ...]:
    """Addresses lower-cased and stripped, first occurrence kept, empty ones dropped."""
    seen: dict[str, None] = {}
    for address in addresses:
        cleaned = address.strip().lower()
        if cleaned:
            seen.setdefault(cleaned, None)
    return tuple(seen)


# The serving process acting on its own (taking up exports a stop of serve interrupted):
# an auditor, named apart from every person in the audit log.
SERVE_SYSTEM = Principal(name="system:serve", roles=frozenset({Role.AUDITOR}))


def local_operator(os_user: str) -> Principal:
    """The person at the archive's own shell: administrator and auditor, named ``cli:<user>``.

    Whoever can run the command line can read the vault's files and keys anyway; the roles
    say so, and the name keeps their actions apart in the audit log.
    """
    return Principal(name=f"cli:{os_user}", roles=frozenset({Role.ADMIN, Role.AUDITOR}))


def allows(principal: Principal, permission: Permission) -> bool:
    """Whether any of the principal's roles allows ``permission``."""
    return permission in principal.permissions


def require(principal: Principal, permission: Permission) -> None:
    """Raise PermissionDenied unless the principal may do ``permission``."""
    if allows(principal, permission):
        return
    needed = " or ".join(role.value for role in roles_granting(permission))
    raise PermissionDenied(f"{principal.name} may not {permission.value} "
                           f"(that needs the role {needed}).")


def require_any(principal: Principal, *permissions: Permission) -> None:
    """Raise PermissionDenied unless the principal may do at least one of ``permissions``
    (for what two roles need alike, such as checking the audit chain)."""
    if any(allows(principal, permission) for permission in permissions):
        return
    doing = " or ".join(permission.value for permission in permissions)
    roles = {role: None for permission in permissions for role in roles_granting(permission)}
    needed = " or ".join(role.value for role in roles)
    raise PermissionDenied(f"{principal.name} may not {doing} (that needs the role {needed}).")
