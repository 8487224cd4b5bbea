"""Every use case against every role: a principal whose roles do not allow it gets
PermissionDenied before anything is done (nothing is written, not even an audit entry); one
whose roles allow it is never refused for its roles."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Permission, Role, permissions_of
from mailvault.compliance.tiers import Job
from mailvault.errors import MailvaultError, PermissionDenied
from mailvault.store import audit
from mailvault.usecases import (
    auditing,
    backups,
    cases,
    disposition,
    exporting,
    gateway,
    holds,
    importing,
    lifecycle,
    monitoring,
    overview,
    people,
    restoring,
    retention,
    reviewing,
    serving,
    sources,
    subjects,
)
from mailvault.vault import Vault
from tests.support import build_message

P = Permission
Call = Callable[[Vault, Principal, Path], object]
NO_JOB = Job(id=999, query="", target="deep", actor="nobody", state="running", total=0,
             done=0, created_at=None, finished_at=None)
NO_MAILBOX = "aaaaaaaaaaaa"
SOURCE = {"name": "mailhost", "kind": "pop3", "host": "127.0.0.1", "user": "eve"}


def _import(vault: Vault, who: Principal, tmp: Path) -> object:
    (tmp / "one.eml").write_bytes(build_message(subject="permission table"))
    return importing.import_files(vault, who, importing.plan_import([tmp / "one.eml"]))


def _serve(vault: Vault, who: Principal, _tmp: Path) -> None:
    def run(_vault: Vault, _overrides: dict[str, list[str]],
            ready: Callable[[list[str]], None], _actor: str) -> None:
        ready(["smtp 127.0.0.1:2525"])

    serving.serve(vault, who, {}, lambda _endpoints: None, run)


# Use case -> the permissions of which any one allows it, and a call that does as little as
# possible once allowed (a name that does not exist is refused after the check, not before).
USE_CASES: dict[str, tuple[set[Permission], Call]] = {
    "importing.import_files": ({P.SOURCES}, _import),
    "importing.reindex": ({P.SOURCES}, lambda v, w, t: importing.reindex(v, w)),
    "monitoring.status": ({P.MONITOR}, lambda v, w, t: monitoring.status(v, w)),
    "monitoring.stats": ({P.MONITOR}, lambda v, w, t: monitoring.stats(v, w)),
    "monitoring.verify": ({P.MONITOR}, lambda v, w, t: monitoring.verify(v, w)),
    "monitoring.failures": ({P.MONITOR}, lambda v, w, t: monitoring.failures(v, w)),
    "monitoring.retry_failure": ({P.SOURCES},
                                 lambda v, w, t: monitoring.retry_failure(v, w, 999)),
    "overview.overview": ({P.MONITOR}, lambda v, w, t: overview.overview(v, w)),
    "overview.figures": ({P.MONITOR}, lambda v, w, t: overview.figures(v, w)),
    "auditing.read_log": ({P.AUDIT_READ}, lambda v, w, t: auditing.read_log(v, w)),
    "auditing.verify_chain": ({P.AUDIT_READ, P.MONITOR},
                              lambda v, w, t: auditing.verify_chain(v, w)),
    "auditing.head": ({P.AUDIT_READ, P.MONITOR}, lambda v, w, t: auditing.head(v, w)),
    "holds.place_hold": ({P.HOLDS}, lambda v, w, t: holds.place_hold(
        v, w, "matter", reason="subpoena", owner="legal", custodian="bob@example.org")),
    "holds.release_hold": ({P.HOLDS}, lambda v, w, t: holds.release_hold(v, w, "none")),
    "holds.list_holds": ({P.HOLDS}, lambda v, w, t: holds.list_holds(v, w)),
    "holds.holds_on": ({P.HOLDS}, lambda v, w, t: holds.holds_on(v, w, "999")),
    "retention.list_policies": ({P.RETENTION},
                                lambda v, w, t: retention.list_policies(v, w)),
    "retention.add_policy": ({P.RETENTION}, lambda v, w, t: retention.add_policy(
        v, w, "long", match="domain", value="example.org", period="10y")),
    "retention.set_default_policy": ({P.RETENTION},
                                     lambda v, w, t: retention.set_default_policy(v, w, "8y")),
    "retention.remove_policy": ({P.RETENTION},
                                lambda v, w, t: retention.remove_policy(v, w, "none")),
    "retention.recompute": ({P.RETENTION}, lambda v, w, t: retention.recompute(v, w)),
    "retention.message_retention": ({P.RETENTION},
                                    lambda v, w, t: retention.message_retention(v, w, "999")),
    "disposition.dry_run": ({P.RETENTION}, lambda v, w, t: disposition.dry_run(v, w)),
    "disposition.propose": ({P.RETENTION}, lambda v, w, t: disposition.propose(v, w)),
    "disposition.approve": ({P.RETENTION}, lambda v, w, t: disposition.approve(v, w, 999)),
    "disposition.cancel": ({P.RETENTION}, lambda v, w, t: disposition.cancel(v, w, 999)),
    "disposition.dispose": ({P.RETENTION}, lambda v, w, t: disposition.dispose(v, w)),
    "disposition.runs": ({P.RETENTION}, lambda v, w, t: disposition.runs(v, w)),
    "lifecycle.start_move": ({P.LIFECYCLE},
                             lambda v, w, t: lifecycle.start_move(v, w, "", "deep")),
    "lifecycle.finish_move": ({P.LIFECYCLE},
                              lambda v, w, t: lifecycle.finish_move(v, w, NO_JOB)),
    "lifecycle.unfinished_moves": ({P.LIFECYCLE},
                                   lambda v, w, t: lifecycle.unfinished_moves(v, w)),
    "lifecycle.recent_moves": ({P.LIFECYCLE}, lambda v, w, t: lifecycle.recent_moves(v, w)),
    "lifecycle.compact": ({P.LIFECYCLE}, lambda v, w, t: lifecycle.compact(v, w)),
    "lifecycle.run_lifecycle": ({P.LIFECYCLE}, lambda v, w, t: lifecycle.run_lifecycle(v, w)),
    "lifecycle.rules": ({P.LIFECYCLE}, lambda v, w, t: lifecycle.rules(v, w)),
    "sources.add_source": ({P.SOURCES}, lambda v, w, t: sources.add_source(
        v, w, sources.check_definition(SOURCE), "a password")),
    "sources.list_sources": ({P.SOURCES}, lambda v, w, t: sources.list_sources(v, w)),
    "sources.show_source": ({P.SOURCES}, lambda v, w, t: sources.show_source(v, w, "none")),
    "sources.remove_source": ({P.SOURCES},
                              lambda v, w, t: sources.remove_source(v, w, "none")),
    "sources.sync_now": ({P.SOURCES}, lambda v, w, t: sources.sync_now(v, w, "none")),
    "sources.check_connection": ({P.SOURCES},
                                 lambda v, w, t: sources.check_connection(v, w, "none")),
    "sources.reconcile_sources": ({P.SOURCES},
                                  lambda v, w, t: sources.reconcile_sources(v, w, "none")),
    "people.add_user": ({P.USERS}, lambda v, w, t: people.add_user(
        v, w, "carol", ["auditor"], [], "a long enough password")),
    "people.add_first_administrator": ({P.USERS},
                                       lambda v, w, t: people.add_first_administrator(v, w)),
    "people.list_users": ({P.USERS}, lambda v, w, t: people.list_users(v, w)),
    "people.update_user": ({P.USERS},
                           lambda v, w, t: people.update_user(v, w, "none", roles=["user"])),
    "people.set_password": ({P.USERS}, lambda v, w, t: people.set_password(
        v, w, "none", "a long enough password")),
    "people.disable_user": ({P.USERS}, lambda v, w, t: people.disable_user(v, w, "none")),
    "people.enable_user": ({P.USERS}, lambda v, w, t: people.enable_user(v, w, "none")),
    "people.remove_user": ({P.USERS}, lambda v, w, t: people.remove_user(v, w, "none")),
    "people.enable_totp": ({P.USERS}, lambda v, w, t: people.enable_totp(v, w, "none")),
    "people.disable_totp": ({P.USERS}, lambda v, w, t: people.disable_totp(v, w, "none")),
    "people.create_token": ({P.USERS}, lambda v, w, t: people.create_token(v, w, "none")),
    "people.list_tokens": ({P.USERS}, lambda v, w, t: people.list_tokens(v, w)),
    "people.revoke_token": ({P.USERS}, lambda v, w, t: people.revoke_token(v, w, 999)),
    "people.add_smtp_user": ({P.USERS}, lambda v, w, t: people.add_smtp_user(
        v, w, "mta", "a password")),
    "people.list_smtp_users": ({P.USERS}, lambda v, w, t: people.list_smtp_users(v, w)),
    "people.remove_smtp_user": ({P.USERS},
                                lambda v, w, t: people.remove_smtp_user(v, w, "none")),
    "serving.serve": ({P.SETTINGS}, _serve),
    "reviewing.add_policy": ({P.SETTINGS}, lambda v, w, t: reviewing.add_policy(
        v, w, reviewing.PolicyDraft(name="p", supervised=("bob@example.org",),
                                    lexicon=("x",), reviewers=("nobody",)))),
    "reviewing.list_policies": ({P.SETTINGS, P.REVIEW, P.AUDIT_READ},
                                lambda v, w, t: reviewing.list_policies(v, w)),
    "reviewing.show_policy": ({P.SETTINGS, P.REVIEW, P.AUDIT_READ},
                              lambda v, w, t: reviewing.show_policy(v, w, "none")),
    "reviewing.remove_policy": ({P.SETTINGS},
                                lambda v, w, t: reviewing.remove_policy(v, w, "none")),
    "reviewing.run": ({P.SETTINGS}, lambda v, w, t: reviewing.run(v, w, "none")),
    "reviewing.queue": ({P.REVIEW}, lambda v, w, t: reviewing.queue(v, w)),
    "reviewing.open_item": ({P.REVIEW}, lambda v, w, t: reviewing.open_item(v, w, 999)),
    "reviewing.decide": ({P.REVIEW},
                         lambda v, w, t: reviewing.decide(v, w, [999], "no_issue")),
    "reviewing.add_tag": ({P.REVIEW}, lambda v, w, t: reviewing.add_tag(v, w, 999, "x")),
    "reviewing.remove_tag": ({P.REVIEW},
                             lambda v, w, t: reviewing.remove_tag(v, w, 999, "x")),
    "reviewing.report": ({P.REVIEW, P.AUDIT_READ}, lambda v, w, t: reviewing.report(v, w)),
    # Allowed, then refused: nothing listens on port 1.
    "restoring.require_restore": ({P.DOWNLOAD},
                                  lambda v, w, t: restoring.require_restore(v, w)),
    "restoring.restore_mail": ({P.DOWNLOAD}, lambda v, w, t: restoring.restore_mail(
        v, w, "", restoring.target("127.0.0.1:1", "implicit", "eve"), "a password",
        restoring.folder_mode("keep"))),
    "restoring.queue_restore": ({P.DOWNLOAD}, lambda v, w, t: restoring.queue_restore(
        v, w, "", restoring.target("127.0.0.1:1", "implicit", "eve"),
        restoring.folder_mode("keep"))),
    "restoring.restores": ({P.DOWNLOAD}, lambda v, w, t: restoring.restores(v, w)),
    "restoring.restore_job": ({P.DOWNLOAD}, lambda v, w, t: restoring.restore_job(v, w, 1)),
    "subjects.person_report": ({P.SEARCH_ALL},
                               lambda v, w, t: subjects.person_report(v, w, "eve@example.org")),
    "subjects.erase": ({P.RETENTION},
                       lambda v, w, t: subjects.erase(v, w, "eve@example.org", "request 1")),
    "backups.back_up": ({P.BACKUP}, lambda v, w, t: backups.back_up(v, w, t / "backup")),
    "backups.check_backup": ({P.BACKUP}, lambda v, w, t: backups.check_backup(w, t / "none")),
    "backups.restore": ({P.BACKUP},
                        lambda v, w, t: backups.restore(w, t / "none", t / "restored")),
    "backups.upgrade": ({P.BACKUP}, lambda v, w, t: backups.upgrade(w, v.path, None)),
    "cases.create_case": ({P.SEARCH_ALL}, lambda v, w, t: cases.create_case(v, w, "matter")),
    "cases.list_cases": ({P.SEARCH_ALL}, lambda v, w, t: cases.list_cases(v, w)),
    "cases.show_case": ({P.SEARCH_ALL}, lambda v, w, t: cases.show_case(v, w, "none")),
    "cases.close_case": ({P.SEARCH_ALL}, lambda v, w, t: cases.close_case(v, w, "none")),
    "cases.add_custodian": ({P.SEARCH_ALL}, lambda v, w, t: cases.add_custodian(
        v, w, "none", "bob@example.org")),
    "cases.add_query": ({P.SEARCH_ALL},
                        lambda v, w, t: cases.add_query(v, w, "none", "q", "lunch")),
    "cases.add_note": ({P.SEARCH_ALL}, lambda v, w, t: cases.add_note(v, w, "none", "n")),
    # Needs SEARCH_ALL and HOLDS: both are the auditor's, so the auditor's alone here.
    "cases.place_hold": ({P.SEARCH_ALL}, lambda v, w, t: cases.place_hold(
        v, w, "none", "h", reason="r", owner="o", custodian="bob@example.org")),
    # Needs SEARCH_ALL and DOWNLOAD, both the auditor's.
    "exporting.start_export": ({P.SEARCH_ALL}, lambda v, w, t: exporting.start_export(
        v, w, "", t / "export", case="none")),
    "exporting.run_export": ({P.SEARCH_ALL},
                             lambda v, w, t: exporting.run_export(v, w, 999)),
    "exporting.list_exports": ({P.SEARCH_ALL}, lambda v, w, t: exporting.list_exports(v, w)),
    "exporting.export_job": ({P.SEARCH_ALL}, lambda v, w, t: exporting.export_job(v, w, 999)),
    "exporting.interrupted_exports": ({P.SEARCH_ALL},
                                      lambda v, w, t: exporting.interrupted_exports(v, w)),
    # A public key: anyone may have it.
    "exporting.export_key": (set(P), lambda v, w, t: exporting.export_key(v, w)),
    "gateway.create_mailbox": ({P.SETTINGS}, lambda v, w, t: gateway.create_mailbox(v, w)),
    "gateway.list_mailboxes": ({P.MONITOR}, lambda v, w, t: gateway.list_mailboxes(v, w)),
    "gateway.show_mailbox": ({P.MONITOR},
                             lambda v, w, t: gateway.show_mailbox(v, w, NO_MAILBOX)),
    "gateway.set_state": ({P.SETTINGS},
                          lambda v, w, t: gateway.set_state(v, w, NO_MAILBOX, True)),
    "gateway.delete_mailbox": ({P.SETTINGS},
                               lambda v, w, t: gateway.delete_mailbox(v, w, NO_MAILBOX)),
    "gateway.change_password": ({P.SETTINGS}, lambda v, w, t: gateway.change_password(
        v, w, NO_MAILBOX, "old", "new")),
}
MODULES: list[ModuleType] = [auditing, backups, cases, disposition, exporting, gateway, holds,
                             importing, lifecycle, monitoring, overview, people, restoring,
                             retention, reviewing, serving, sources, subjects]


def test_the_table_names_every_use_case_that_takes_a_principal() -> None:
    taking = {f"{module.__name__.rsplit('.', 1)[1]}.{name}"
              for module in MODULES
              for name, function in inspect.getmembers(module, inspect.isfunction)
              if function.__module__ == module.__name__ and not name.startswith("_")
              and "who" in inspect.signature(function).parameters}
    assert taking == USE_CASES.keys()


def _entries(vault: Vault) -> int:
    with vault.engine.connect() as conn:
        return len(list(audit.entries(conn)))


@pytest.mark.parametrize("role", list(Role))
def test_each_role_may_use_exactly_what_its_permissions_allow(
        role: Role, vault: Vault, tmp_path: Path) -> None:
    vault.settings.ingest.workers = 1
    who = Principal("someone", frozenset({role}), ("someone@example.org",))
    granted = permissions_of({role})
    wrong: list[str] = []
    for name, (needed, call) in USE_CASES.items():
        before = _entries(vault)
        try:
            call(vault, who, tmp_path)
            refused: Any = None
        except PermissionDenied as exc:
            refused = exc
            if _entries(vault) != before:
                wrong.append(f"{name} wrote to the audit log before refusing")
        except MailvaultError:
            refused = None  # allowed, then refused for another reason (no such name)
        if bool(needed & granted) == (refused is not None):
            wrong.append(f"{name}: {'refused' if refused else 'allowed'} for {role.value}")
    assert wrong == []


def test_the_refusal_names_the_roles_that_would_do(vault: Vault) -> None:
    reviewer = Principal("rita", frozenset({Role.REVIEWER}))
    with pytest.raises(PermissionDenied) as refused:
        auditing.head(vault, reviewer)
    assert str(refused.value) == ("rita may not read the audit log or see monitoring, status "
                                  "and verification (that needs the role auditor or admin).")
