"""Builders for test mailboxes: real corpus messages APPENDed to Dovecot accounts."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import imapclient

from mailvault.ingest.files import FileOptions, Reader
from tests.sources.dovecot import DOMAIN, Dovecot

_counter = itertools.count()


def corpus_messages(corpus: Path) -> Iterator[bytes]:
    """Enron mail from the corpus with CRLF line ends (what an IMAP server hands back)."""
    folder = corpus / "mbox" / "enron-allen-p"
    paths = [folder / n for n in ("inbox.mbox", "sent.mbox", "discussion_threads.mbox",
                                  "notes_inbox.mbox", "_sent_mail.mbox", "straw.mbox")]
    seen: set[str] = set()
    for item in Reader(paths, FileOptions(format="mbox")):
        raw = getattr(item, "raw", b"")
        crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not crlf.strip() or b"\r\r" in crlf or b"\0" in crlf:
            continue
        digest = sha256(crlf)
        if digest not in seen:
            seen.add(digest)
            yield crlf


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def date_of(raw: bytes) -> datetime | None:
    """The Date header, for the INTERNALDATE of APPEND (so date-range SEARCH means something)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"date:"):
            try:
                return parsedate_to_datetime(line[5:].decode("ascii", "replace").strip())
            except (TypeError, ValueError):
                return None
    return None


@dataclass
class Mailbox:
    """A Dovecot account made for one test."""

    server: Dovecot
    address: str
    password: str

    def client(self) -> imapclient.IMAPClient:
        client = imapclient.IMAPClient("127.0.0.1", self.server.imap, ssl=False)
        client.login(self.address, self.password)
        return client

    def fill(self, folders: dict[str, list[bytes]]) -> None:
        """Create the folders (nested and non-ASCII allowed) and APPEND the messages."""
        client = self.client()
        try:
            existing = {name for _f, _d, name in client.list_folders()}
            for folder, messages in folders.items():
                if folder not in existing:
                    client.create_folder(folder)
                for raw in messages:
                    client.append(folder, raw, flags=(), msg_time=date_of(raw))
        finally:
            client.logout()


def new_mailbox(server: Dovecot, local: str = "user") -> Mailbox:
    """A fresh account with a unique address in the test domain."""
    address = f"{local}{next(_counter)}@{DOMAIN}"
    password = f"pw-{address}"
    server.add_user(address, password)
    return Mailbox(server, address, password)
