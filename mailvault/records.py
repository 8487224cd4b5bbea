"""The records that cross package lines: where a copy of a message came from (Provenance),
what a source hands to the pipeline (Incoming, Unreadable), and what the catalog records
from a message's own headers (MessageFields). Every package may import this module; it
imports nothing of mailvault's but ``fsnames`` and ``message`` (for the structure a source
that built a message itself already knows: KnownMessage)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from mailvault.fsnames import shown
from mailvault.message import KnownMessage


@dataclass(frozen=True)
class Provenance:
    """One arrival of a message: the source, where in it, and the SMTP envelope if any.

    ``item`` names the copy inside its source (a file path and offset, a PST node id, a POP3
    UIDL) so that importing the same source again is recognised as the same arrival.
    File names are kept exactly, as ``os.fsdecode`` gives them (see ``mailvault.fsnames``).
    """

    kind: str
    source: str
    folder: str | None = None
    account: str | None = None
    item: str | None = None
    uidvalidity: int | None = None
    uid: int | None = None
    internal_date: datetime | None = None
    flags: tuple[str, ...] = ()
    envelope_from: str | None = None
    envelope_to: tuple[str, ...] = ()
    client_address: str | None = None
    client_name: str | None = None
    helo: str | None = None
    tls: str | None = None
    auth_user: str | None = None
    received_at: datetime | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    def key(self) -> str:
        """A stable digest of what identifies this arrival (the same arrival twice is one row).

        Files, mailboxes and PSTs are identified by where the copy sits; live captures
        (no ``item``) by their envelope and time, since two deliveries are two arrivals.
        """
        ident: list[Any] = [self.kind, self.source, self.account, self.folder, self.item,
                            self.uidvalidity, self.uid]
        if self.item is None and self.uid is None:
            ident += [self.envelope_from, list(self.envelope_to), self.client_address,
                      self.received_at.isoformat() if self.received_at else None]
        return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (datetimes as ISO 8601, tuples as lists)."""
        return {name: _json_value(name, getattr(self, name)) for name in _FIELDS}

    def to_stored_json(self) -> dict[str, Any]:
        """``to_json()`` without the fields left at their defaults (None, empty): what the
        catalog keeps for each arrival, a third of the full form for a file's messages.
        ``from_json`` gives them back."""
        values = ((name, getattr(self, name)) for name in _FIELDS)
        return {name: _json_value(name, value) for name, value in values
                if name in ("kind", "source") or (value is not None and value != ())}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        """The inverse of to_json()."""
        values = dict(data)
        for name in ("internal_date", "received_at"):
            if values.get(name):
                values[name] = datetime.fromisoformat(values[name])
        values["flags"] = tuple(values.get("flags") or ())
        values["envelope_to"] = tuple(values.get("envelope_to") or ())
        values["extra"] = tuple(sorted((values.get("extra") or {}).items()))
        return cls(**values)

    def describe(self) -> str:
        """A short human label: 'mbox /a/b.mbox @1234', 'imap alice INBOX uid 5' (file
        names with bytes that are not UTF-8 shown escaped: fsnames.shown)."""
        bits = [self.kind, self.source]
        if self.account:
            bits.append(self.account)
        if self.folder:
            bits.append(self.folder)
        if self.uid is not None:
            bits.append(f"uid {self.uid}")
        elif self.item:
            bits.append(f"@{self.item}")
        return shown(" ".join(bits))


# The fields in their order, read once (dataclasses.fields costs more than a message's JSON).
_FIELDS = tuple(f.name for f in fields(Provenance))


def _json_value(name: str, value: Any) -> Any:
    """A field's value as JSON holds it: datetimes as ISO 8601, ``extra`` as an object,
    other tuples as lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if name == "extra":
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True)
class Incoming:
    """Raw message bytes as received, and where they came from.

    ``known`` is what a source that built the bytes itself (a PST item rebuilt as MIME)
    already knows of their structure; the pipeline then does not parse them again
    (message.parse_known gives what parse would). The stored bytes are ``raw`` either way.
    """

    raw: bytes
    provenance: Provenance
    known: KnownMessage | None = None


@dataclass(frozen=True)
class Unreadable:
    """A source item that could not even be read as bytes (corrupt PST item, I/O error)."""

    provenance: Provenance
    reason: str


@dataclass(frozen=True)
class MessageFields:
    """What the catalog records from a message's own headers (computed by the workers)."""

    date: datetime | None
    subject: str
    from_addr: str
    to_addrs: str
    cc_addrs: str
    message_id: str
    defects: list[str]
    addresses: list[tuple[str, str, str]]
    attachments: list[tuple[str, str, int]]
