"""Fixtures for source tests: one Dovecot for the session, fresh accounts per test, corpus
messages to fill them with, and sources defined in the test's vault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailvault.sources import registry
from mailvault.sources.definitions import SourceSpec, build
from mailvault.vault import Vault
from tests.sources import dovecot
from tests.sources.mailboxes import Mailbox, corpus_messages, new_mailbox


@pytest.fixture(scope="session")
def messages(corpus: Path) -> list[bytes]:
    """A few hundred distinct real messages (CRLF)."""
    found = []
    for raw in corpus_messages(corpus):
        found.append(raw)
        if len(found) == 400:
            break
    return found


@pytest.fixture
def mailbox(dovecot_server: dovecot.Dovecot) -> Callable[[], Mailbox]:
    """Makes a new, empty account on the shared Dovecot."""
    return lambda: new_mailbox(dovecot_server)


@pytest.fixture
def add_source(vault: Vault, dovecot_server: dovecot.Dovecot
               ) -> Callable[..., SourceSpec]:
    """Defines a source in the test vault: add_source(user, password, **settings)."""
    counter = iter(range(1000))

    def make(user: str, password: str, **settings: Any) -> SourceSpec:
        values: dict[str, Any] = {"name": f"src{next(counter)}", "kind": "imap",
                                  "host": "127.0.0.1", "port": dovecot_server.imap,
                                  "tls": "starttls", "user": user,
                                  "ca_file": str(dovecot_server.ca_file)}
        values.update(settings)
        spec = build(values)
        registry.add(vault, spec, password, "test")
        return spec

    return make
