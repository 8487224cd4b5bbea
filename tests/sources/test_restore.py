"""Restore into the test Dovecot: every message's exact bytes in the folders they were
archived from, with their INTERNALDATE and flags; a second restore appends nothing; syncing
the restored mailbox back adds no message; a wrong password or an untrusted certificate is
one sentence; the command line and the audit log never show the password."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import imapclient
import pytest

from mailvault.accounts.principal import Principal, local_operator
from mailvault.accounts.roles import Role
from mailvault.errors import InputError, NotFoundError, PermissionDenied, SourceError
from mailvault.ingest.pipeline import Pipeline
from mailvault.records import Incoming, Provenance
from mailvault.sources import restore_jobs
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.restoring import (
    AppendBatch,
    Copy,
    FolderMode,
    FolderResult,
    RestoreReport,
    Target,
)
from mailvault.store import audit, catalog
from mailvault.usecases import restoring
from mailvault.vault import Vault
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import Mailbox, date_of
from tests.sources.support import message_count, message_hashes, run_sync
from tests.support import build_message, invoke

OPERATOR = local_operator("ops")
# folder -> (message index, flags) in the source mailbox.
LAYOUT: dict[str, list[tuple[int, tuple[bytes, ...]]]] = {
    "INBOX": [(0, (b"\\Seen",)), (1, ()), (2, (b"\\Seen", b"\\Flagged")), (3, (b"$Label1",))],
    "Archive/2001": [(4, (b"\\Answered", b"\\Seen")), (5, ())],
    "Sent": [(6, (b"\\Seen",))],
}


def _fill(owner: Mailbox, messages: list[bytes]) -> None:
    client = owner.client()
    try:
        for folder, items in LAYOUT.items():
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for index, flags in items:
                client.append(folder, messages[index], flags=flags,
                              msg_time=date_of(messages[index]))
    finally:
        client.logout()


def _contents(owner: Mailbox) -> dict[str, set[tuple[str, datetime, frozenset[bytes]]]]:
    """folder -> {(sha256, INTERNALDATE, flags)} of every message."""
    client = owner.client()
    client.normalise_times = False
    out: dict[str, set[tuple[str, datetime, frozenset[bytes]]]] = {}
    try:
        for flags, _sep, name in client.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(flags):
                continue
            client.select_folder(name, readonly=True)
            uids = client.search(["ALL"])
            found = client.fetch(uids, [b"BODY.PEEK[]", b"INTERNALDATE", b"FLAGS"]) \
                if uids else {}
            if found:
                out[str(name)] = {
                    (hashlib.sha256(d[b"BODY[]"]).hexdigest(), d[b"INTERNALDATE"],
                     frozenset(f for f in d[b"FLAGS"] if f != b"\\Recent"))
                    for d in found.values()}
    finally:
        client.logout()
    return out


@pytest.fixture
def archived(vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
             add_source: Callable[..., SourceSpec]) -> Mailbox:
    """A mailbox in three folders, with flags, synced into the vault."""
    owner = mailbox()
    no_id = build_message(subject="no message id here").replace(b"\n", b"\r\n")
    no_id = b"\r\n".join(line for line in no_id.split(b"\r\n")
                         if not line.lower().startswith(b"message-id:"))
    _fill(owner, [*messages[:7]])
    client = owner.client()
    client.append("INBOX", no_id, flags=(b"\\Draft",), msg_time=date_of(messages[0]))
    client.logout()
    spec = add_source(owner.address, owner.password)
    assert run_sync(vault, spec).totals()["archived"] == 8
    return owner


def _target(server: Dovecot, box: Mailbox, tls: str = "starttls",
            ca: bool = True) -> Target:
    port = server.imap if tls == "starttls" else server.imaps
    return Target.parse(f"127.0.0.1:{port}", tls, box.address,
                        str(server.ca_file) if ca else None)


def test_restore_is_exact_and_never_twice(vault: Vault, archived: Mailbox,
                                          mailbox: Callable[[], Mailbox],
                                          add_source: Callable[..., SourceSpec],
                                          dovecot_server: Dovecot) -> None:
    target = mailbox()
    report = restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, target),
                                    target.password, FolderMode.parse("keep"))
    assert report.totals() == {"appended": 8, "present": 0, "failed": 0}, report.to_json()
    source_side, restored = _contents(archived), _contents(target)
    assert restored == source_side
    assert {name: len(v) for name, v in restored.items()} == {
        "INBOX": 5, "Archive/2001": 2, "Sent": 1}
    assert {sha for v in restored.values() for sha, _d, _f in v} == message_hashes(vault)

    again = restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, target),
                                   target.password, FolderMode.parse("keep"))
    assert again.totals() == {"appended": 0, "present": 8, "failed": 0}
    assert _contents(target) == source_side

    before = message_count(vault)
    spec = add_source(target.address, target.password)
    synced = run_sync(vault, spec)
    assert synced.totals()["archived"] == 0 and message_count(vault) == before

    with vault.engine.connect() as conn:
        logged = [e for e in audit.entries(conn) if e.action.startswith("restore")]
    assert [e.action for e in logged] == ["restore", "restore-done"] * 2
    assert logged[1].detail["appended"] == 8 and len(logged[1].detail["sha256"]) == 8
    assert all(target.password not in json.dumps(e.detail) for e in logged)


def test_a_stopped_restore_resumes_with_what_is_missing(
        vault: Vault, archived: Mailbox, mailbox: Callable[[], Mailbox],
        dovecot_server: Dovecot) -> None:
    target = mailbox()
    # What a restore killed midway leaves: some of INBOX there already (the anonymous
    # message among them).
    first = restoring.restore_mail(vault, OPERATOR, "subject:\"no message id here\"",
                                   _target(dovecot_server, target), target.password,
                                   FolderMode.parse("keep"))
    assert first.totals()["appended"] == 1
    rest = restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, target),
                                  target.password, FolderMode.parse("keep"))
    assert rest.totals() == {"appended": 7, "present": 1, "failed": 0}
    assert _contents(target) == _contents(archived)


def test_folder_modes(vault: Vault, archived: Mailbox, mailbox: Callable[[], Mailbox],
                      dovecot_server: Dovecot) -> None:
    flat, under = mailbox(), mailbox()
    restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, flat, "implicit"),
                           flat.password, FolderMode.parse("flat"))
    assert {n: len(v) for n, v in _contents(flat).items()} == {"INBOX": 8}
    restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, under),
                           under.password, FolderMode.parse("into Restored"))
    assert {n: len(v) for n, v in _contents(under).items()} == {
        "Restored/INBOX": 5, "Restored/Archive/2001": 2, "Restored/Sent": 1}


def test_wrong_password_and_untrusted_certificate_are_one_sentence(
        vault: Vault, archived: Mailbox, mailbox: Callable[[], Mailbox],
        dovecot_server: Dovecot) -> None:
    target = mailbox()
    with pytest.raises(SourceError) as wrong:
        restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, target),
                               "not-the-password", FolderMode())
    assert "refused the login" in str(wrong.value) and "not-the-password" not in str(wrong.value)
    with pytest.raises(SourceError) as untrusted:
        restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, target, ca=False),
                               target.password, FolderMode())
    assert "certificate" in str(untrusted.value) and "cannot be verified" in str(untrusted.value)
    for error in (wrong.value, untrusted.value):
        assert str(error).count("\n") == 0 and str(error).endswith(".")
    assert _contents(target) == {}
    with vault.engine.connect() as conn:
        done = [e for e in audit.entries(conn) if e.action == "restore-done"]
    assert [e.detail["appended"] for e in done] == [0, 0]
    assert all(e.detail["stopped"] for e in done)


def test_who_may_restore(vault: Vault, archived: Mailbox, mailbox: Callable[[], Mailbox],
                         dovecot_server: Dovecot) -> None:
    target = mailbox()
    admin = Principal("adam", frozenset({Role.ADMIN}))
    user = Principal("bob", frozenset({Role.USER}), ("bob@example.org",))
    for who in (admin, user):
        with pytest.raises(PermissionDenied):
            restoring.restore_mail(vault, who, "", _target(dovecot_server, target),
                                   target.password, FolderMode())
    with vault.engine.connect() as conn:
        assert not [e for e in audit.entries(conn) if e.action.startswith("restore")]
    vault.settings.restore.users_own_mail = True
    stranger = Principal("eve", frozenset({Role.USER}), ("eve@example.net",))
    nothing = restoring.restore_mail(vault, stranger, "", _target(dovecot_server, target),
                                     target.password, FolderMode())
    assert nothing.totals()["appended"] == 0
    # Only the message bob@example.org is party to (the one without a Message-ID).
    own = restoring.restore_mail(vault, user, "", _target(dovecot_server, target),
                                 target.password, FolderMode())
    assert own.totals() == {"appended": 1, "present": 0, "failed": 0}


def test_bad_targets_are_refused_before_connecting() -> None:
    for where, tls in (("host:99999", "implicit"), ("", "starttls"), ("host", "none")):
        with pytest.raises(InputError):
            Target.parse(where, tls, "u@example.org")
    with pytest.raises(InputError):
        FolderMode.parse("into")
    assert Target.parse("[::1]:1993", "implicit", "u").port == 1993
    assert Target.parse("mail.example.org", "starttls", "u").port == 143


def test_the_command_line(tmp_path: Path, vault_path: Path, vault: Vault, archived: Mailbox,
                          mailbox: Callable[[], Mailbox], dovecot_server: Dovecot) -> None:
    vault.close()
    target = mailbox()
    secret = tmp_path / "pw"
    secret.write_text(target.password + "\n")
    args = ["restore", "", "--vault", vault_path, "--imap",
            f"127.0.0.1:{dovecot_server.imaps}", "--user", target.address,
            "--password-file", secret, "--ca-file", dovecot_server.ca_file]
    done = invoke(*args)
    assert done.exit_code == 0, done.stderr
    assert "8 appended, 0 already there, 0 failed" in done.text
    again = invoke(*args, "--json")
    assert again.json()["appended"] == 0 and again.json()["present"] == 8
    assert target.password not in done.text + done.stderr + again.text
    with imapclient.IMAPClient("127.0.0.1", dovecot_server.imap, ssl=False) as client:
        client.login(target.address, target.password)
        assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 5


def test_a_folder_the_server_refuses_fails_alone(vault: Vault, archived: Mailbox,
                                                 mailbox: Callable[[], Mailbox],
                                                 dovecot_server: Dovecot) -> None:
    target = mailbox()
    long_name = "x" * 300  # over Dovecot's limit for one level of a mailbox name
    report = restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, target),
                                    target.password, FolderMode.parse(f"into {long_name}"))
    assert report.totals() == {"appended": 0, "present": 0, "failed": 8}
    assert not report.stopped
    assert {f["folder"] for f in report.failures} == {
        f"{long_name}/INBOX", f"{long_name}/Archive/2001", f"{long_name}/Sent"}
    assert all("refused CREATE" in f["reason"] for f in report.failures)


def test_flags_no_server_takes_are_left_out(vault: Vault, mailbox: Callable[[], Mailbox],
                                            dovecot_server: Dovecot) -> None:
    """A flag no APPEND may carry (an unknown system flag, \\Recent, a keyword that is not an
    atom) is left out; the batch goes through (a BAD inside a MULTIAPPEND would desync the
    connection)."""
    raws = [build_message(subject=f"fine {i}").replace(b"\n", b"\r\n") for i in range(4)]
    flags = [(), ("\\Bogus", "\\Seen"), ("\\Recent", "$Label1"), ("bad(word", "naïve")]
    arrivals = [Incoming(raw, Provenance(kind="eml", source="t", folder="INBOX", item=str(i),
                                         flags=flag))
                for i, (raw, flag) in enumerate(zip(raws, flags, strict=True))]
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        assert pipeline.archive_many(arrivals).archived == 4
    target = mailbox()
    report = restoring.restore_mail(vault, OPERATOR, "", _target(dovecot_server, target),
                                    target.password, FolderMode())
    assert report.totals() == {"appended": 4, "present": 0, "failed": 0}, repr(report)
    got = {sha: set(f) for sha, _date, f in _contents(target)["INBOX"]}
    assert [got[hashlib.sha256(raw).hexdigest()] for raw in raws] == [
        set(), {b"\\Seen"}, {b"$Label1"}, set()]


class RefusingSession:
    """An IMAP session that refuses one message's APPEND (and any MULTIAPPEND holding it),
    as a server over quota for that message would."""

    multiappend = True

    def __init__(self, refused: bytes) -> None:
        self.refused = refused
        self.folder: list[bytes] = []

    def append_many(self, folder: str, items: list[tuple[bytes, Any, Any]]) -> None:
        if any(wire == self.refused for wire, _f, _d in items):
            raise SourceError("127.0.0.1:1 refused APPEND to INBOX: NO over quota.")
        self.folder += [wire for wire, _f, _d in items]

    def append(self, folder: str, wire: bytes, flags: Any, date: Any) -> None:
        self.append_many(folder, [(wire, flags, date)])


def test_a_refused_batch_is_sent_again_one_by_one(vault: Vault) -> None:
    raws = [build_message(subject=f"m{i}").replace(b"\n", b"\r\n") for i in range(5)]
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        pipeline.archive_many([Incoming(r, Provenance(kind="eml", source="t", item=str(i)))
                               for i, r in enumerate(raws)])
    with vault.engine.connect() as conn:
        rows = catalog.messages_by_id(conn, [1, 2, 3, 4, 5])
    session = RefusingSession(raws[2])
    report, result = RestoreReport("t"), FolderResult()
    pending = AppendBatch(session, "INBOX", result, report)  # type: ignore[arg-type]
    for row, raw in zip(rows, raws, strict=True):
        pending.add(row, Copy(row.id, (), None, row.size), raw)
    pending.flush()
    assert (result.appended, result.failed) == (4, 1)
    assert session.folder == [raws[0], raws[1], raws[3], raws[4]]
    assert [f["id"] for f in report.failures] == [rows[2].id]


class _Killed(BaseException):
    """What a SIGKILL is to the restore: nothing after it runs but ``finally`` blocks."""


class _KillAt:
    """A progress that ends the run when ``at`` copies have been handled."""

    def __init__(self, at: int) -> None:
        self.at = at

    def start(self, copies: int, size: int) -> None:
        del copies, size

    def advance(self, copies: int, size: int) -> None:
        del size
        if copies >= self.at:
            raise _Killed


def test_a_restores_progress_is_kept_and_a_resumed_run_reports_it(
        vault_path: Path, vault: Vault, archived: Mailbox, mailbox: Callable[[], Mailbox],
        dovecot_server: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every copy's progress reaches the catalog (in use, every 100 copies or 2 s).
    monkeypatch.setattr(restore_jobs, "_EVERY_COPIES", 1)
    target = mailbox()
    where, mode = _target(dovecot_server, target), FolderMode.parse("keep")
    with pytest.raises(_Killed):
        restoring.restore_mail(vault, OPERATOR, "", where, target.password, mode,
                               progress=_KillAt(5))
    vault.close()
    # Another process (a restarted serve) reads how far it got: its lock is free, so the
    # run that said "running" is known to be interrupted.
    with Vault.open(vault_path) as reopened:
        [job] = restoring.restores(reopened, OPERATOR)
        assert (job.state, job.runs, job.planned, job.handled) == ("interrupted", 1, 8, 5)
        assert job.report is None and job.planned_bytes > job.handled_bytes > 0
        resumed = restoring.restore_mail(reopened, OPERATOR, "", where, target.password, mode)
        assert resumed.job == job.id
        assert resumed.resumed == {"runs": 1, "planned": 8, "handled": 5,
                                   "ended": "interrupted"}
        assert resumed.totals()["appended"] + resumed.totals()["present"] == 8
        assert _contents(target) == _contents(archived)
        [done] = restoring.restores(reopened, OPERATOR)
        assert (done.id, done.state, done.runs, done.handled) == (job.id, "done", 2, 8)
        assert done.report is not None and done.report["appended"] == resumed.totals()[
            "appended"]
        assert done.finished_at is not None
        # Done: the same restore started again is a new job (it appends nothing).
        again = restoring.restore_mail(reopened, OPERATOR, "", where, target.password, mode)
        assert again.job != job.id and again.resumed is None
        assert again.totals() == {"appended": 0, "present": 8, "failed": 0}
        # Someone else's restore is not found, not even by number.
        with pytest.raises(NotFoundError):
            restoring.restore_job(reopened, Principal("other", frozenset({Role.AUDITOR})),
                                  job.id)
