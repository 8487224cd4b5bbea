"""Each use case that acts writes its audit entry once, under the principal's name, and
those that only look write none (reading the audit log aside: it is itself recorded)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.store import audit
from mailvault.usecases import (
    auditing,
    disposition,
    holds,
    importing,
    lifecycle,
    monitoring,
    people,
    retention,
    serving,
    sources,
)
from mailvault.vault import Vault
from tests.support import build_message

ADA = Principal("ada", frozenset({Role.ADMIN, Role.AUDITOR}))


def _written(vault: Vault, action: Callable[[], object]) -> list[tuple[str, str]]:
    """(actor, action) of each entry ``action`` wrote."""
    with vault.engine.connect() as conn:
        seq, _ = audit.head(conn)
    action()
    with vault.engine.connect() as conn:
        return [(e.actor, e.action) for e in audit.entries(conn) if e.seq > seq]


def _run(vault: Vault, _endpoints: dict[str, list[str]],
         ready: Callable[[list[str]], None], _actor: str) -> None:
    ready(["smtp 127.0.0.1:2525"])


def test_each_action_is_audited_once_as_the_principal(vault: Vault, tmp_path: Path) -> None:
    vault.settings.ingest.workers = 1
    (tmp_path / "a.eml").write_bytes(build_message(subject="audited once",
                                                   to=("bob@example.org",)))
    spec = sources.check_definition({"name": "box", "kind": "pop3", "host": "127.0.0.1",
                                     "user": "eve"})
    expected: list[tuple[str, Callable[[], object]]] = [
        ("ingest", lambda: importing.import_files(
            vault, ADA, importing.plan_import([tmp_path / "a.eml"]))),
        ("reindex", lambda: importing.reindex(vault, ADA)),
        ("verify", lambda: monitoring.verify(vault, ADA)),
        ("audit read", lambda: auditing.read_log(vault, ADA)),
        ("hold-place", lambda: holds.place_hold(vault, ADA, "matter", reason="subpoena",
                                                owner="legal", custodian="bob@example.org")),
        ("hold-release", lambda: holds.release_hold(vault, ADA, "matter", "settled")),
        ("retention-add", lambda: retention.add_policy(vault, ADA, "long", match="domain",
                                                       value="example.org", period="10y")),
        ("retention-default", lambda: retention.set_default_policy(vault, ADA, "8y")),
        ("retention-remove", lambda: retention.remove_policy(vault, ADA, "long")),
        ("dispose-dry-run", lambda: disposition.dry_run(vault, ADA)),
        ("dispose-propose", lambda: disposition.propose(vault, ADA)),
        ("dispose-cancel", lambda: disposition.cancel(vault, ADA,
                                                      disposition.runs(vault, ADA)[0].id)),
        ("tier-move", lambda: lifecycle.start_move(vault, ADA, "", "open")),
        ("tier-move-done", lambda: lifecycle.finish_move(
            vault, ADA, lifecycle.unfinished_moves(vault, ADA)[0])),
        ("source-add", lambda: sources.add_source(vault, ADA, spec, "a password")),
        ("source-test", lambda: sources.check_connection(vault, ADA, "box")),
        ("source-remove", lambda: sources.remove_source(vault, ADA, "box")),
        ("user-add", lambda: people.add_user(vault, ADA, "carol", ["auditor"], [],
                                             "a long enough password")),
        ("token-create", lambda: people.create_token(vault, ADA, "carol", 7)),
        ("token-revoke", lambda: people.revoke_token(vault, ADA,
                                                     people.list_tokens(vault, ADA)[0].id)),
        ("smtp-user add", lambda: people.add_smtp_user(vault, ADA, "mta", "a password")),
        ("smtp-user password", lambda: people.add_smtp_user(vault, ADA, "mta", "another one")),
        ("smtp-user remove", lambda: people.remove_smtp_user(vault, ADA, "mta")),
        ("serve", lambda: serving.serve(vault, ADA, {}, lambda _e: None, _run)),
    ]
    for action, call in expected:
        assert _written(vault, call) == [("ada", action)], action


def test_looking_writes_nothing(vault: Vault, mail: dict[str, int]) -> None:
    looks: list[Callable[[], object]] = [
        lambda: monitoring.status(vault, ADA), lambda: monitoring.stats(vault, ADA),
        lambda: monitoring.failures(vault, ADA), lambda: auditing.verify_chain(vault, ADA),
        lambda: auditing.head(vault, ADA), lambda: holds.list_holds(vault, ADA),
        lambda: retention.list_policies(vault, ADA), lambda: disposition.runs(vault, ADA),
        lambda: lifecycle.recent_moves(vault, ADA), lambda: sources.list_sources(vault, ADA),
        lambda: people.list_users(vault, ADA), lambda: people.list_tokens(vault, ADA),
        lambda: people.list_smtp_users(vault, ADA), lambda: lifecycle.rules(vault, ADA),
        lambda: holds.holds_on(vault, ADA, str(next(iter(mail.values())))),
    ]
    for look in looks:
        assert _written(vault, look) == []


def test_reading_the_log_records_what_was_read(vault: Vault) -> None:
    shown = auditing.read_log(vault, ADA)
    with vault.engine.connect() as conn:
        newest = list(audit.entries(conn))[-1]
    assert (newest.actor, newest.action) == ("ada", "audit read")
    assert newest.detail == {"since": None, "entries": len(shown)}
    assert newest.seq not in {e.seq for e in shown}
