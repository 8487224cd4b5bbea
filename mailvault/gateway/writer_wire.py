"""What the SMTP endpoint and the gateway writer process say to each other over their socket.

A request is one message for one or more mailboxes:

    request id (4) | length of the raw message (4) | length of the ids (2) | mailbox ids,
    comma-separated (ASCII) | the raw message

and its reply names the request and how it ended:

    request id (4) | outcome (1) | length of the text (2) | the error's text (UTF-8)

Plain bytes, not pickles: the writer trusts nothing but their lengths. The socket is a
socketpair between the two processes, so the message in clear never touches the disk.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mailvault.errors import GatewayError, MailboxUnavailable, StorageFullError

REQUEST = struct.Struct(">IIH")
REPLY = struct.Struct(">IBH")
# Outcomes: stored durably, or the error the endpoint answers (550, 452, 451).
STORED = 0
UNAVAILABLE = 1
FULL = 2
FAILED = 3
_TEXT_MAX = 60_000


@dataclass(frozen=True)
class Delivery:
    """One request: a message for these mailboxes."""

    request: int
    mailbox_ids: list[str]
    raw: bytes


def request(number: int, mailbox_ids: list[str], raw: bytes) -> bytes:
    """One request, framed."""
    ids = ",".join(mailbox_ids).encode("ascii")
    return REQUEST.pack(number, len(raw), len(ids)) + ids + raw


def reply(number: int, error: GatewayError | StorageFullError | None) -> bytes:
    """The reply to request ``number``: stored (no error) or the error that stopped it."""
    if error is None:
        return REPLY.pack(number, STORED, 0)
    outcome = (UNAVAILABLE if isinstance(error, MailboxUnavailable)
               else FULL if isinstance(error, StorageFullError) else FAILED)
    text = str(error).encode()[:_TEXT_MAX]
    return REPLY.pack(number, outcome, len(text)) + text


def take_requests(buffer: bytearray) -> list[Delivery]:
    """The whole requests at the start of ``buffer``, removed from it (a partial one stays)."""
    found: list[Delivery] = []
    offset = 0
    while len(buffer) - offset >= REQUEST.size:
        number, raw_length, ids_length = REQUEST.unpack_from(buffer, offset)
        end = offset + REQUEST.size + ids_length + raw_length
        if len(buffer) < end:
            break
        ids_end = offset + REQUEST.size + ids_length
        ids = bytes(buffer[offset + REQUEST.size:ids_end]).decode("ascii", "replace")
        found.append(Delivery(number, ids.split(","), bytes(buffer[ids_end:end])))
        offset = end
    del buffer[:offset]
    return found


def take_replies(buffer: bytearray) -> list[tuple[int, GatewayError | StorageFullError | None]]:
    """The whole replies at the start of ``buffer``, removed from it: each request's number
    and its error (None: stored)."""
    found: list[tuple[int, GatewayError | StorageFullError | None]] = []
    offset = 0
    while len(buffer) - offset >= REPLY.size:
        number, outcome, text_length = REPLY.unpack_from(buffer, offset)
        end = offset + REPLY.size + text_length
        if len(buffer) < end:
            break
        text = bytes(buffer[offset + REPLY.size:end]).decode("utf-8", "replace")
        error: GatewayError | StorageFullError | None = (
            None if outcome == STORED
            else MailboxUnavailable(text) if outcome == UNAVAILABLE
            else StorageFullError(text) if outcome == FULL
            else GatewayError(text))
        found.append((number, error))
        offset = end
    del buffer[:offset]
    return found
