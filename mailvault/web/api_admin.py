"""The administration API under /api/v1/: what the administration pages do, for scripts.

Sources, retention policies, the lifecycle, users and SMTP users are the administrator's;
holds are the auditor's. Each route calls the same use case as its page (role check and audit
entry there). A change needs a bearer token (the browser's session only reads), so no
cross-site form can reach these. Passwords travel in request bodies only and are never
returned.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from mailvault.usecases import gateway, holds, lifecycle, people, retention, sources
from mailvault.web.api import ApiJSON
from mailvault.web.identity import PrincipalDep, VaultDep, web_of

router = APIRouter(prefix="/api/v1", default_response_class=ApiJSON, tags=["administration"])
Name = Annotated[str, Field(min_length=1, max_length=200)]
Secret = Annotated[str, Field(min_length=1, max_length=1000)]


class NewSource(BaseModel):
    """A source, as ``mailvault source add imap|pop3`` takes it, with its password."""

    kind: Literal["imap", "pop3"]
    name: Name
    host: Name
    user: Name
    password: Secret
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    tls: Literal["implicit", "starttls", "none"] = "implicit"
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    scope: Literal["mailbox", "users", "domain"] = "mailbox"
    users_file: str | None = None
    domain: str | None = None
    auth: Literal["login", "master", "authzid"] = "login"
    master_separator: Annotated[str, Field(min_length=1, max_length=5)] = "*"
    include: list[str] = []
    exclude: list[str] = []
    special_use: list[str] = []
    since: date | None = None
    before: date | None = None
    interval: str | None = None
    cron: str | None = None
    delete_after_archive: bool = False


class NewPolicy(BaseModel):
    name: Name
    match: Literal["source", "address", "domain", "folder", "tier", "query"]
    value: Name
    period: Annotated[str, Field(description="90d, 12w, 6m, 7y", max_length=20)]
    counted_from: Literal["date", "archived"] = "date"


class DefaultPolicy(BaseModel):
    period: Annotated[str, Field(description="90d, 12w, 6m, 7y", max_length=20)]
    counted_from: Literal["date", "archived"] = "date"


class NewHold(BaseModel):
    """A hold on a custodian's mail or a query's matches (one of the two)."""

    name: Name
    reason: Name
    owner: Name
    custodian: str | None = None
    query: str | None = None
    since: date | None = Field(None, description="From this day on (inclusive).")
    before: date | None = Field(None, description="Before this day (exclusive).")


class Release(BaseModel):
    note: str = ""


class TierMove(BaseModel):
    query: str = Field("", description="A query in the search language ('' = all).")
    to: Literal["active", "open", "deep"]


class NewUser(BaseModel):
    name: Name
    roles: list[Literal["admin", "auditor", "reviewer", "user"]]
    addresses: list[str] = []
    password: Secret


class UserChange(BaseModel):
    """What to replace (a field left out stays as it is)."""

    roles: list[Literal["admin", "auditor", "reviewer", "user"]] | None = None
    addresses: list[str] | None = None


class NewPassword(BaseModel):
    password: Secret


class SmtpUser(BaseModel):
    name: Name
    password: Secret


def _day(value: date | None) -> datetime | None:
    return None if value is None else datetime(value.year, value.month, value.day, tzinfo=UTC)


# -- gateway --------------------------------------------------------------------------------

@router.get("/gateway/mailboxes", summary="Gateway mailboxes: state, messages, bytes, pulls")
def list_gateway_mailboxes(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"mailboxes": [m.to_json() for m in gateway.list_mailboxes(vault, who)]}


# -- sources --------------------------------------------------------------------------------

@router.get("/sources", summary="Every source with its last and next run")
def list_sources(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"sources": sources.list_sources(vault, who)}


@router.post("/sources", summary="Add an IMAP or POP3 source", status_code=201)
def add_source(body: NewSource, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    """The password is sealed by the vault's keyring and never returned."""
    values = body.model_dump(exclude={"password"})
    for key in ("since", "before"):
        values[key] = values[key].isoformat() if values[key] else None
    spec = sources.check_definition(values)
    warnings = sources.add_source(vault, who, spec, body.password)
    return {"source": spec.to_json(), "warnings": warnings}


@router.get("/sources/{name}", summary="One source's settings and status")
def show_source(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return sources.show_source(vault, who, name).to_json()


@router.delete("/sources/{name}", summary="Forget a source (its archived mail stays)")
def remove_source(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    sources.remove_source(vault, who, name)
    return {"removed": name}


@router.post("/sources/{name}/test", summary="Test a source's connection and login")
def check_source(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return sources.check_connection(vault, who, name).to_json()


@router.post("/sources/{name}/sync", summary="Sync a source now")
def sync_source(request: Request, name: str, who: PrincipalDep, vault: VaultDep
                ) -> dict[str, Any]:
    """Under serve the messages go to the spool first (counted there, archived by serve)."""
    reports = sources.sync_now(vault, who, name, sink=web_of(request).sink)
    return {"reports": [r.to_json() for r in reports]}


# -- retention ------------------------------------------------------------------------------

@router.get("/retention/policies", summary="Every retention policy, the default first")
def list_policies(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"policies": [p.to_json() for p in retention.list_policies(vault, who)]}


@router.post("/retention/policies", summary="Add a retention policy", status_code=201)
def add_policy(body: NewPolicy, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return retention.add_policy(vault, who, body.name, match=body.match, value=body.value,
                                period=body.period, counted_from=body.counted_from).to_json()


@router.put("/retention/default", summary="Change the default retention policy")
def set_default(body: DefaultPolicy, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return retention.set_default_policy(vault, who, body.period, body.counted_from).to_json()


@router.delete("/retention/policies/{name:path}", summary="Remove a retention policy")
def remove_policy(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    retention.remove_policy(vault, who, name)
    return {"removed": name}


# -- holds ----------------------------------------------------------------------------------

@router.get("/holds", summary="Legal holds and how many messages each covers")
def list_holds(who: PrincipalDep, vault: VaultDep,
               include_released: Annotated[bool, Query()] = False) -> dict[str, Any]:
    return {"holds": [h.to_json() for h in holds.list_holds(
        vault, who, include_released=include_released)]}


@router.post("/holds", summary="Place a legal hold", status_code=201)
def place_hold(body: NewHold, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return holds.place_hold(vault, who, body.name, reason=body.reason, owner=body.owner,
                            custodian=body.custodian or None, query=body.query or None,
                            since=_day(body.since), before=_day(body.before)).to_json()


@router.post("/holds/{name:path}/release", summary="Release a legal hold")
def release_hold(name: str, body: Release, who: PrincipalDep, vault: VaultDep
                 ) -> dict[str, Any]:
    return holds.release_hold(vault, who, name, body.note).to_json()


@router.get("/messages/{ref}/holds", summary="The active holds that keep a message")
def message_holds(ref: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"holds": [h.to_json() for h in holds.holds_on(vault, who, ref)]}


# -- lifecycle ------------------------------------------------------------------------------

@router.get("/lifecycle", summary="The lifecycle rules, unfinished and recent tier moves")
def lifecycle_state(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"rules": lifecycle.rules(vault, who).to_json(),
            "unfinished": [j.to_json() for j in lifecycle.unfinished_moves(vault, who)],
            "recent": [j.to_json() for j in lifecycle.recent_moves(vault, who)]}


@router.post("/lifecycle/run", summary="Apply the lifecycle rules once now")
def run_lifecycle(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return lifecycle.run_lifecycle(vault, who).to_json()


@router.post("/tier-moves", summary="Move the messages a query matches to a tier")
def tier_move(body: TierMove, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    job = lifecycle.start_move(vault, who, body.query, body.to)
    return lifecycle.finish_move(vault, who, job).to_json()


# -- users ----------------------------------------------------------------------------------

@router.get("/users", summary="The users, their roles, addresses and state")
def list_users(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    at = datetime.now(UTC)
    return {"users": [u.to_json(at) for u in people.list_users(vault, who)]}


@router.post("/users", summary="Add a user", status_code=201)
def add_user(body: NewUser, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    added = people.add_user(vault, who, body.name, body.roles, body.addresses, body.password)
    return added.to_json(datetime.now(UTC))


@router.patch("/users/{name}", summary="Replace a user's roles or addresses")
def update_user(name: str, body: UserChange, who: PrincipalDep, vault: VaultDep
                ) -> dict[str, Any]:
    changed = people.update_user(vault, who, name, roles=body.roles, addresses=body.addresses)
    return changed.to_json(datetime.now(UTC))


@router.post("/users/{name}/password", summary="Set a user's password (ends a lock-out)")
def set_password(name: str, body: NewPassword, who: PrincipalDep, vault: VaultDep
                 ) -> dict[str, Any]:
    people.set_password(vault, who, name, body.password)
    return {"user": name, "password": "set"}


@router.post("/users/{name}/disable", summary="Disable a user")
def disable_user(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    people.disable_user(vault, who, name)
    return {"user": name, "status": "disabled"}


@router.post("/users/{name}/enable", summary="Enable a user")
def enable_user(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    people.enable_user(vault, who, name)
    return {"user": name, "status": "active"}


@router.delete("/users/{name}", summary="Remove a user for good")
def remove_user(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    revoked = people.remove_user(vault, who, name)
    return {"removed": name, "tokens_revoked": revoked}


# -- SMTP users -----------------------------------------------------------------------------

@router.get("/smtp-users", summary="The users the SMTP endpoint accepts")
def list_smtp_users(who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    return {"smtp_users": people.list_smtp_users(vault, who)}


@router.post("/smtp-users", summary="Add an SMTP user, or set a new password")
def add_smtp_user(body: SmtpUser, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    new = people.add_smtp_user(vault, who, body.name, body.password)
    return {"smtp_user": body.name, "new": new}


@router.delete("/smtp-users/{name:path}", summary="Remove an SMTP user")
def remove_smtp_user(name: str, who: PrincipalDep, vault: VaultDep) -> dict[str, Any]:
    people.remove_smtp_user(vault, who, name)
    return {"removed": name}
