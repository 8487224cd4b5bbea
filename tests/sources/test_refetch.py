"""Retrying an IMAP or POP3 failure fetches that one message from the source again: a sync
has passed it (the folder's mark or the UIDL list moved on), so running the source again
never would."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.errors import SourceError
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.reconcile import reconcile
from mailvault.usecases import monitoring
from mailvault.vault import Vault
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import Mailbox, sha256
from tests.sources.support import message_hashes, run_sync

OPERATOR = local_operator("ops")


def _oversized(template: bytes, megabytes: float) -> bytes:
    head, _sep, body = template.partition(b"\r\n\r\n")
    filler = (b"x" * 76 + b"\r\n") * int(megabytes * 1024 * 1024 / 78)
    return head + b"\r\n\r\n" + body + filler


@pytest.mark.parametrize("kind", ["imap", "pop3"])
def test_a_message_refused_at_sync_is_fetched_again_by_a_retry(
        kind: str, vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    vault.settings.ingest.max_message_mb = 1
    large = _oversized(messages[40], 1.2)
    owner = mailbox()
    owner.fill({"INBOX": [messages[41], large, messages[42]]})
    spec = (add_source(owner.address, owner.password) if kind == "imap" else
            add_source(owner.address, owner.password, kind="pop3", port=dovecot_server.pop3))
    assert run_sync(vault, spec).totals()["failed"] == 1
    # Running the source again does not ask for it: its mark has moved past it.
    assert run_sync(vault, spec).totals()["failed"] == 0
    [failure] = monitoring.failures(vault, OPERATOR)
    assert failure.kind == kind and "too large" in failure.reason

    vault.settings.ingest.max_message_mb = 2
    retried = monitoring.retry_failure(vault, OPERATOR, failure.id)

    assert (retried.outcome, retried.archived) == (monitoring.SETTLED, 1)
    assert sha256(large) in message_hashes(vault)
    assert monitoring.failures(vault, OPERATOR) == []
    if kind == "imap":
        inbox = next(f for f in reconcile(vault, spec, "test").folders if f.folder == "INBOX")
        assert (inbox.archived, inbox.failed, inbox.missing) == (3, [], [])


def test_a_message_the_server_would_not_return_is_fetched_once_it_can(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[43:46]})
    home = dovecot_server.dir / "mail"
    files = sorted(home.glob(f"{owner.address.split('@')[0]}-*/Maildir/new/*"))
    vault.settings.sync.backoff_s = 0.01
    spec = add_source(owner.address, owner.password)
    # Dovecot (uid 65534) cannot read this file: it drops the connection on FETCH.
    os.chmod(files[1], 0)
    try:
        assert run_sync(vault, spec).totals()["failed"] == 1
        [failure] = monitoring.failures(vault, OPERATOR)
        with pytest.raises(SourceError):
            monitoring.retry_failure(vault, OPERATOR, failure.id)
    finally:
        os.chmod(files[1], 0o600)
    assert [f.id for f in monitoring.failures(vault, OPERATOR)] == [failure.id]
    retried = monitoring.retry_failure(vault, OPERATOR, failure.id)
    assert (retried.outcome, retried.archived) == (monitoring.SETTLED, 1)
    assert len(message_hashes(vault)) == 3
