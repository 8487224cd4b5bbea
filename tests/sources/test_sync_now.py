"""Sync now through the use case: as the principal, into this process's pipeline or into a
sink the caller gives (what the web does under serve, handing messages to the spool)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from mailvault.accounts.principal import local_operator
from mailvault.ingest.pipeline import ArchiveReport, Outcome, Pipeline
from mailvault.records import Incoming, Unreadable
from mailvault.sources.definitions import SourceSpec
from mailvault.store import audit
from mailvault.usecases import sources
from mailvault.vault import Vault
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import Mailbox, sha256
from tests.sources.support import message_hashes

OPERATOR = local_operator("ops")


class CountingSink:
    """A pipeline that counts what it is handed."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.batch_size = pipeline.batch_size
        self.handed: list[str] = []

    def archive_many(self, items: Iterable[Incoming | Unreadable],
                     on_batch: Callable[[list[Outcome]], None] | None = None
                     ) -> ArchiveReport:
        def counted() -> Iterable[Incoming | Unreadable]:
            for item in items:
                if isinstance(item, Incoming):
                    self.handed.append(sha256(item.raw))
                yield item

        return self.pipeline.archive_many(counted(), on_batch=on_batch)


def test_sync_now_hands_the_messages_to_the_given_sink(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[50:53]})
    spec = add_source(owner.address, owner.password)
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        sink = CountingSink(pipeline)
        [report] = sources.sync_now(vault, OPERATOR, spec.name, sink=sink)
    assert report.totals()["archived"] == 3
    assert sorted(sink.handed) == sorted(sha256(m) for m in messages[50:53])
    assert message_hashes(vault) == set(sink.handed)
    with vault.engine.connect() as conn:
        synced = [e for e in audit.entries(conn) if e.action == "source-sync"]
    assert [(e.actor, e.detail["source"]) for e in synced] == [("cli:ops", spec.name)]
