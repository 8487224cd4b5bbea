"""Fixtures of the use-case tests: a small vault of built mail with known parties."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailvault.ingest.pipeline import Outcome, Pipeline
from mailvault.records import Incoming, Provenance
from mailvault.vault import Vault
from tests.support import Attachment, build_message

WHEN = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    created = Vault.create(tmp_path / "vault")
    try:
        yield created
    finally:
        created.close()


def archive(vault: Vault, items: list[tuple[bytes, Provenance]]) -> list[int]:
    """Archive messages with the given arrivals; the id of each, in order."""
    outcomes: list[Outcome] = []
    with Pipeline(vault, actor="test", workers=1) as pipeline:
        pipeline.archive_many([Incoming(raw, prov) for raw, prov in items],
                              on_batch=outcomes.extend)
    return [o.message_id for o in outcomes if o.message_id is not None]


def file_arrival(name: str) -> Provenance:
    return Provenance(kind="file", source="test", folder="INBOX", item=name)


def journal_arrival(*recipients: str, sender: str = "alice@example.org") -> Provenance:
    """An SMTP journal copy whose envelope names recipients the headers may not show."""
    return Provenance(kind="smtp", source="journal", envelope_from=sender,
                      envelope_to=recipients, received_at=WHEN)


@pytest.fixture
def mail(vault: Vault) -> dict[str, int]:
    """Four messages: alice to bob; carol to dave (Bcc erin, seen only in the journal
    envelope); dave to frank with an attachment; and a message the journal brings twice,
    the second copy naming grace as a Bcc recipient."""
    to_bob = build_message(subject="lunch plans", sender="alice@example.org",
                           to=("bob@example.org",))
    to_dave = build_message(subject="quarterly numbers", sender="carol@example.org",
                            to=("dave@example.org",))
    with_file = build_message(subject="the contract", sender="dave@example.org",
                              to=("frank@example.org",),
                              attachments=[Attachment("contract.txt",
                                                      b"signed on the dotted line\n",
                                                      "text/plain")])
    twice = build_message(subject="board minutes", sender="heidi@example.org",
                          to=("ivan@example.org",))
    ids = archive(vault, [
        (to_bob, file_arrival("1")),
        (to_dave, journal_arrival("dave@example.org", "erin@example.org",
                                  sender="carol@example.org")),
        (with_file, file_arrival("3")),
        (twice, file_arrival("4")),
    ])
    archive(vault, [(twice, journal_arrival("ivan@example.org", "grace@example.org",
                                            sender="heidi@example.org"))])
    return dict(zip(("to_bob", "to_dave", "with_file", "twice"), ids, strict=True))
