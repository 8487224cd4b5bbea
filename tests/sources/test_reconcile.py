"""Reconcile: per folder, at the source / archived / missing / failed, with UIDs and why."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mailvault.sources.definitions import SourceSpec
from mailvault.sources.reconcile import reconcile
from mailvault.vault import Vault
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import Mailbox
from tests.sources.support import message_count, run_sync


def _oversized(template: bytes, megabytes: float) -> bytes:
    head, _sep, body = template.partition(b"\r\n\r\n")
    filler = (b"x" * 76 + b"\r\n") * int(megabytes * 1024 * 1024 / 78)
    return head + b"\r\n\r\n" + body + filler


def test_reconcile_reports_failed_and_missing_with_reasons(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    vault.settings.ingest.max_message_mb = 1
    owner = mailbox()
    owner.fill({"INBOX": [*messages[0:5], _oversized(messages[5], 1.2), *messages[6:9]],
                "Archive/2001": messages[9:12]})
    spec = add_source(owner.address, owner.password)
    report = run_sync(vault, spec)
    assert report.status == "ok" and report.totals()["failed"] == 1
    owner.fill({"Archive/2001": messages[12:14]})

    result = reconcile(vault, spec, "test")

    folders = {f.folder: f for f in result.folders}
    inbox, archive = folders["INBOX"], folders["Archive/2001"]
    assert (inbox.at_source, inbox.archived, len(inbox.missing)) == (9, 8, 0)
    assert [uid for uid, _ in inbox.failed] == [6]
    assert "too large" in inbox.failed[0][1]
    assert (archive.at_source, archive.archived) == (5, 3)
    assert [uid for uid, _ in archive.missing] == [4, 5]
    assert all("after the last sync" in why for _, why in archive.missing)
    assert not result.complete

    run_sync(vault, spec)
    again = {f.folder: f for f in reconcile(vault, spec, "test").folders}
    assert again["Archive/2001"].complete and len(again["INBOX"].failed) == 1


def test_a_message_the_server_cannot_return_is_recorded_and_passed(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[20:30]})
    home = dovecot_server.dir / "mail"
    files = sorted(p for p in home.glob(f"{owner.address.split('@')[0]}-*/Maildir/new/*"))
    assert len(files) == 10
    # File names do not sort in UID order; Dovecot's uidlist says which UID a file has.
    unreadable_uid = _uid_of(files[3])
    # Dovecot (uid 65534) cannot read this file: it drops the connection on FETCH.
    os.chmod(files[3], 0)
    vault.settings.sync.backoff_s = 0.01
    spec = add_source(owner.address, owner.password)
    try:
        report = run_sync(vault, spec)
    finally:
        os.chmod(files[3], 0o600)
    assert report.status == "ok", report.errors
    assert report.totals()["archived"] == 9 and report.totals()["failed"] == 1
    assert message_count(vault) == 9
    inbox = next(f for f in reconcile(vault, spec, "test").folders if f.folder == "INBOX")
    assert inbox.archived == 9 and [uid for uid, _ in inbox.failed] == [unreadable_uid]
    assert "dropped the connection" in inbox.failed[0][1]


def _uid_of(message_file: Path) -> int:
    """The UID Dovecot gave a Maildir file, from its dovecot-uidlist ("UID [ext] :name")."""
    uidlist = message_file.parent.parent / "dovecot-uidlist"
    for line in uidlist.read_text().splitlines()[1:]:
        uid, _, name = line.partition(" :")
        if name.split(":2,")[0] == message_file.name.split(":2,")[0]:
            return int(uid.split()[0])
    raise AssertionError(f"{message_file.name} is not in {uidlist}")
