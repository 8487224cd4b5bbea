"""Retention policies (``/admin/retention``), legal holds (``/admin/holds``) and the lifecycle
(``/admin/lifecycle``).

Policies and the lifecycle are the administrator's; holds are the auditor's (accounts/roles.py:
an administrator without the auditor role neither sees nor places them). Each form calls its
use case, which checks the role and writes the audit entry (``retention-*``, ``hold-place``,
``hold-release``, ``tier-move``...). The lifecycle rules themselves are settings ([tiers] in
mailvault.toml): the page shows them, runs a pass now and moves mail by query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from mailvault.days import parse_day
from mailvault.usecases import holds, lifecycle, retention
from mailvault.web.identity import FormViewerDep, VaultDep, ViewerDep
from mailvault.web.pages_admin import done, page

router = APIRouter(include_in_schema=False)
RETENTION = "/admin/retention"
HOLDS = "/admin/holds"
LIFECYCLE = "/admin/lifecycle"
Text = Annotated[str, Form()]


@router.get(RETENTION)
def retention_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "admin/retention.html",
                policies=retention.list_policies(vault, who.principal))


@router.post(RETENTION)
def add_policy(who: FormViewerDep, vault: VaultDep, name: Text = "", match: Text = "",
               value: Text = "", period: Text = "", counted_from: Text = "date") -> Response:
    policy = retention.add_policy(vault, who.principal, name.strip(), match=match,
                                  value=value.strip(), period=period,
                                  counted_from=counted_from)
    return done(RETENTION, "policy-added", policy.name)


@router.post(RETENTION + "/default")
def change_default(who: FormViewerDep, vault: VaultDep, period: Text = "",
                   counted_from: Text = "date") -> Response:
    policy = retention.set_default_policy(vault, who.principal, period, counted_from)
    return done(RETENTION, "default-changed", f"{policy.days} days from {policy.counted_from}")


@router.post(RETENTION + "/recompute")
def recompute(who: FormViewerDep, vault: VaultDep) -> Response:
    changed = retention.recompute(vault, who.principal)
    return done(RETENTION, "recomputed", f"{changed} messages")


@router.post(RETENTION + "/{name:path}/remove")
def remove_policy(name: str, who: FormViewerDep, vault: VaultDep) -> Response:
    retention.remove_policy(vault, who.principal, name)
    return done(RETENTION, "policy-removed", name)


@router.get(HOLDS)
def holds_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "admin/holds.html",
                holds=holds.list_holds(vault, who.principal, include_released=True))


@router.post(HOLDS)
def place_hold(who: FormViewerDep, vault: VaultDep, name: Text = "", custodian: Text = "",
               query: Text = "", since: Text = "", before: Text = "", reason: Text = "",
               owner: Text = "") -> Response:
    placed = holds.place_hold(
        vault, who.principal, name.strip(), reason=reason.strip(), owner=owner.strip(),
        custodian=custodian.strip() or None, query=query.strip() or None,
        since=parse_day(since.strip()) if since.strip() else None,
        before=parse_day(before.strip()) if before.strip() else None)
    return done(HOLDS, "hold-placed", f"{placed.hold.name} ({placed.messages} messages now)")


@router.post(HOLDS + "/{name:path}/release")
def release_hold(name: str, who: FormViewerDep, vault: VaultDep, note: Text = "") -> Response:
    holds.release_hold(vault, who.principal, name, note.strip())
    return done(HOLDS, "hold-released", name)


@router.get(LIFECYCLE)
def lifecycle_page(request: Request, who: ViewerDep, vault: VaultDep) -> Response:
    return page(request, who, "admin/lifecycle.html",
                rules=lifecycle.rules(vault, who.principal),
                unfinished=lifecycle.unfinished_moves(vault, who.principal),
                recent=lifecycle.recent_moves(vault, who.principal))


@router.post(LIFECYCLE + "/run")
def run_lifecycle(who: FormViewerDep, vault: VaultDep) -> Response:
    report = lifecycle.run_lifecycle(vault, who.principal)
    moved = ", ".join(f"{n} to {tier}" for tier, n in report.moved.items()) or "nothing moved"
    return done(LIFECYCLE, "lifecycle-run",
                f"{moved}; {len(report.resumed)} moves resumed; "
                f"{report.retention_changed} retention dates changed; "
                f"{len(report.compacted)} volumes compacted")


@router.post(LIFECYCLE + "/move")
def move(who: FormViewerDep, vault: VaultDep, query: Text = "", target: Text = "") -> Response:
    job = lifecycle.start_move(vault, who.principal, query.strip(), target)
    finished = lifecycle.finish_move(vault, who.principal, job)
    return done(LIFECYCLE, "moved", f"job {finished.id}, {finished.done} of {finished.total} "
                                    f"messages to {finished.target}")
