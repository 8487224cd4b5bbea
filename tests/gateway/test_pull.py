"""`source add gateway`: a gateway mailbox pulled into the vault through the one pipeline,
byte-exact, deleted from the mailbox only once the vault has committed, resumable after a
SIGKILL without duplicates; a damaged message is recorded as a failure and kept."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.ingest.pipeline import ArchiveReport, Outcome
from mailvault.records import Incoming, Unreadable
from mailvault.sources import registry
from mailvault.sources.definitions import SourceSpec, build
from mailvault.sources.reconcile import reconcile
from mailvault.sources.sync import sync
from mailvault.vault import Vault
from tests.gateway.stored_bytes import flip
from tests.sources.mailboxes import corpus_messages, sha256
from tests.sources.support import arrivals, message_count, message_hashes, run_sync
from tests.support import MAILVAULT

AddSource = Callable[[str, str], SourceSpec]


@pytest.fixture
def messages(corpus: Path) -> list[bytes]:
    found = []
    for raw in corpus_messages(corpus):
        found.append(raw)
        if len(found) == 150:
            break
    # Bytes as they came: a bare-LF message and one with 8-bit bytes in its body.
    return [*found, b"Subject: bare LF\n\nline one\nline two\n",
            b"Subject: 8bit\r\n\r\ncaf\xe9 \xff\xfe\r\n"]


@pytest.fixture
def add_source(vault: Vault) -> AddSource:
    def add(mailbox_id: str, password: str) -> SourceSpec:
        spec = build({"name": "gw", "kind": "gateway", "user": mailbox_id})
        registry.add(vault, spec, password, "test")
        return spec
    return add


def _filled(boxes: GatewayMailboxes, raws: Iterable[bytes]) -> tuple[str, str]:
    info, password = boxes.create("pull test")
    for raw in raws:
        boxes.deliver(info.id, raw)
    return info.id, password


def test_a_pull_drains_the_mailbox_byte_exact(vault: Vault, mailboxes: GatewayMailboxes,
                                              messages: list[bytes],
                                              add_source: AddSource) -> None:
    mailbox_id, password = _filled(mailboxes, messages[:40] + messages[-2:])
    spec = add_source(mailbox_id, password)
    assert spec.delete_after_archive and spec.host == ""
    before = reconcile(vault, spec, "test")
    assert len(before.folders[0].missing) == 42

    report = run_sync(vault, spec)

    assert report.status == "ok", report.errors
    assert message_hashes(vault) == {sha256(m) for m in messages[:40] + messages[-2:]}
    assert mailboxes.get(mailbox_id).count == 0
    found = arrivals(vault, "gw")
    assert {a["kind"] for a in found} == {"gateway"} and len(found) == 42
    assert reconcile(vault, spec, "test").complete


class _CrashingSink:
    """Takes every message, then dies before anything is committed."""

    batch_size = 10

    def archive_many(self, items: Iterable[Incoming | Unreadable],
                     on_batch: Callable[[list[Outcome]], None] | None = None
                     ) -> ArchiveReport:
        list(items)
        raise RuntimeError("the archive process died")


def test_nothing_is_deleted_before_the_vault_commits(vault: Vault,
                                                     mailboxes: GatewayMailboxes,
                                                     messages: list[bytes],
                                                     add_source: AddSource) -> None:
    mailbox_id, password = _filled(mailboxes, messages[:5])
    spec = add_source(mailbox_id, password)
    with pytest.raises(RuntimeError):
        sync(vault, spec, _CrashingSink(), "test")
    assert mailboxes.get(mailbox_id).count == 5
    assert run_sync(vault, spec).status == "ok"
    assert mailboxes.get(mailbox_id).count == 0
    assert message_count(vault) == 5


def test_a_damaged_message_is_a_failure_and_stays(vault: Vault, mailboxes: GatewayMailboxes,
                                                  messages: list[bytes],
                                                  add_source: AddSource) -> None:
    mailbox_id, password = _filled(mailboxes, messages[:3])
    damaged = mailboxes.unlock(mailbox_id, password).messages()[1].id
    flip(mailboxes.folder / mailbox_id, damaged, -5, 0x40)
    report = run_sync(vault, add_source(mailbox_id, password))
    assert sum(f.failed for f in report.folders.values()) == 1
    assert message_hashes(vault) == {sha256(messages[0]), sha256(messages[2])}
    assert [m.id for m in mailboxes.unlock(mailbox_id, password).messages()] == [damaged]


def test_a_wrong_password_is_a_clear_failure(vault: Vault, mailboxes: GatewayMailboxes,
                                             add_source: AddSource) -> None:
    info, password = mailboxes.create(None)
    report = run_sync(vault, add_source(info.id, "not-" + password))
    assert report.status == "failed"
    assert "wrong password" in report.errors[info.id]
    assert password not in report.errors[info.id]


def test_a_killed_pull_resumes_without_duplicates(vault: Vault, mailboxes: GatewayMailboxes,
                                                  messages: list[bytes],
                                                  add_source: AddSource) -> None:
    mailbox_id, password = _filled(mailboxes, messages)
    spec = add_source(mailbox_id, password)
    small = {"MAILVAULT_INGEST_BATCH_SIZE": "10", "MAILVAULT_SYNC_FETCH_BATCH": "10",
             "MAILVAULT_INGEST_WORKERS": "1"}
    process = subprocess.Popen([*MAILVAULT, "sync", spec.name, "--vault", str(vault.path)],
                               env={**os.environ, **small}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while message_count(vault) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()  # SIGKILL: no clean-up of any kind
    process.wait()
    partial = message_count(vault)
    assert 20 <= partial < len(messages)
    # Deletion comes only after the whole pull: a killed pull deleted nothing.
    assert mailboxes.get(mailbox_id).count == len(messages)

    report = run_sync(vault, spec)

    assert report.status == "ok", report.errors
    assert message_hashes(vault) == {sha256(m) for m in messages}
    found = arrivals(vault, spec.name)
    assert len(found) == len(messages) == len({a["item"] for a in found})
    assert mailboxes.get(mailbox_id).count == 0
