"""The one IMAP adapter that writes: CREATE a folder, APPEND a message, and list what a
folder already holds (Message-ID and size of each message), for restoring mail into a
mailbox. Connecting, certificate checks, the login and the translation of errors into one
sentence (password scrubbed) are the read-only adapter's (``imap.ImapSession``); nothing
here deletes, moves or re-flags a message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailvault.sources.imap import UID_CHUNK, ImapSession

MESSAGE_ID_FIELD = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
_HOLDINGS_ITEMS = [b"RFC822.SIZE", b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
# The system flags an APPEND may set (RFC 3501 2.3.2; \Recent only a server sets).
SYSTEM_FLAGS = frozenset({"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"})
# A keyword is an atom: no space, control character, "(", ")", "{", "%", "*", '"', "\" or "]".
_ATOM = re.compile(r'[^\x00-\x20\x7f(){%*"\\\]]+')
_LINE_END = re.compile(rb"\r\n|\r(?!\n)|\n")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*((?:.|\r?\n[ \t])*)", re.I | re.M)


def wire_form(raw: bytes) -> bytes:
    """The bytes as IMAP carries them: every line end CRLF (RFC 3501 requires it, and
    imaplib would convert them anyway). Mail archived from IMAP or SMTP already is."""
    return _LINE_END.sub(b"\r\n", raw)


def message_id_of(header: bytes) -> str:
    """The Message-ID a message's header (or a FETCH of that one field) carries, unfolded
    and stripped; '' when it has none."""
    head = _HEADER_END.split(header, 1)[0]
    match = _MESSAGE_ID.search(head)
    if match is None:
        return ""
    return re.sub(rb"\s+", b"", match.group(1)).decode("ascii", "replace")


@dataclass
class Holdings:
    """What a folder holds, as far as telling a restored message again needs: Message-ID
    and size of each message; for those without a Message-ID, their UIDs by size (their
    bytes are compared only when an archived message of that size has no Message-ID
    either)."""

    by_id: set[tuple[str, int]] = field(default_factory=set)
    anonymous: dict[int, list[int]] = field(default_factory=dict)
    hashes: set[str] = field(default_factory=set)

    def add(self, wire: bytes) -> None:
        """Count a message just appended as held."""
        ident = message_id_of(wire)
        if ident:
            self.by_id.add((ident, len(wire)))
        else:
            self.hashes.add(hashlib.sha256(wire).hexdigest())


class AppendSession(ImapSession):
    """A logged-in IMAP connection that may create folders and append messages."""

    def __enter__(self) -> AppendSession:
        return self

    def delimiter(self) -> str:
        """The hierarchy delimiter the server uses ('/' when it lists no folder)."""
        folders = self.folders()
        return folders[0].delimiter if folders else "/"

    def ensure_folder(self, name: str) -> None:
        """Create the folder (and the server creates its parents) unless it exists."""
        with self._translated(f"LIST {name}"):
            exists = self._client.folder_exists(name)
        if not exists:
            with self._translated(f"CREATE {name}"):
                self._client.create_folder(name)

    def holdings(self, folder: str) -> Holdings:
        """Message-ID and size of every message in the folder (EXAMINE, then FETCH of the
        one header field: the bodies are not read)."""
        state = self.examine(folder)
        held = Holdings()
        if state.exists == 0:
            return held
        uids = self.search()
        for start in range(0, len(uids), UID_CHUNK):
            chunk = uids[start:start + UID_CHUNK]
            with self._translated(f"FETCH in {folder}"):
                answer = self._client.fetch(chunk, _HOLDINGS_ITEMS)
            for uid, data in answer.items():
                size = int(data.get(b"RFC822.SIZE", 0))
                ident = message_id_of(bytes(data.get(MESSAGE_ID_FIELD) or b""))
                if ident:
                    held.by_id.add((ident, size))
                else:
                    held.anonymous.setdefault(size, []).append(int(uid))
        return held

    def holds(self, folder: str, held: Holdings, wire: bytes) -> bool:
        """Whether the folder already holds this message: the same Message-ID and size, or
        (for a message without Message-ID) the same bytes."""
        ident = message_id_of(wire)
        if ident:
            return (ident, len(wire)) in held.by_id
        same_size = held.anonymous.pop(len(wire), [])
        if same_size:
            held.hashes |= set(self._hashes(folder, same_size))
        return hashlib.sha256(wire).hexdigest() in held.hashes

    def _hashes(self, folder: str, uids: Iterable[int]) -> list[str]:
        self.examine(folder)
        return [hashlib.sha256(item.raw).hexdigest() for item in self.fetch(sorted(uids))
                if item.raw is not None]

    def append(self, folder: str, wire: bytes, flags: Iterable[str],
               internal_date: datetime | None) -> None:
        """APPEND the message with these flags (those only a server may set left out) and
        INTERNALDATE (the server's now when None)."""
        with self._translated(f"APPEND to {folder}"):
            self._client.append(folder, wire, flags=_settable(flags), msg_time=internal_date)

    @property
    def multiappend(self) -> bool:
        """Whether the server takes several messages in one APPEND (RFC 3502)."""
        return bool(self._client.has_capability("MULTIAPPEND"))

    def append_many(self, folder: str,
                    items: list[tuple[bytes, tuple[str, ...], datetime | None]]) -> None:
        """APPEND these messages in one command (MULTIAPPEND: all of them or none)."""
        messages: list[dict[str, Any]] = []
        for wire, flags, internal_date in items:
            message: dict[str, Any] = {"msg": wire, "flags": _settable(flags)}
            if internal_date is not None:
                message["date"] = internal_date
            messages.append(message)
        with self._translated(f"APPEND to {folder}"):
            self._client.multiappend(folder, messages)


def _settable(flags: Iterable[str]) -> list[str]:
    """The flags an APPEND may carry: the system flags of RFC 3501 but ``\\Recent`` (only a
    server sets it), and keywords that are atoms. Anything else would make the server
    answer BAD in the middle of a MULTIAPPEND, whose remaining literals it would then read
    as commands; a flag a server handed out is never of that kind."""
    return [f for f in flags
            if f.lower() in SYSTEM_FLAGS
            or (f.isascii() and not f.startswith("\\") and _ATOM.fullmatch(f) is not None)]
