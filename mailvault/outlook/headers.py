"""The header block of a message rebuilt from an Outlook item.

Mail that arrived over the Internet keeps its original transport headers (PR_TRANSPORT_HEADERS),
minus the MIME headers of a body structure that no longer exists. Mail written in Outlook and
never sent over SMTP (drafts, sent items, attached items) gets headers built from its
properties: From, Sender, To, Cc, Bcc (from the recipient table), Subject, Date, Message-ID,
In-Reply-To, References. Non-ASCII values are RFC 2047 encoded, so the result is plain ASCII.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, getaddresses

from mailvault.outlook.item import Item
from mailvault.outlook.properties import PropertyBag
from mailvault.outlook.tags import (
    PR_ADDRTYPE,
    PR_CLIENT_SUBMIT_TIME,
    PR_CREATION_TIME,
    PR_DISPLAY_BCC,
    PR_DISPLAY_CC,
    PR_DISPLAY_NAME,
    PR_DISPLAY_TO,
    PR_EMAIL_ADDRESS,
    PR_IMPORTANCE,
    PR_IN_REPLY_TO,
    PR_INTERNET_MESSAGE_ID,
    PR_LAST_MODIFICATION_TIME,
    PR_MESSAGE_DELIVERY_TIME,
    PR_RECIPIENT_TYPE,
    PR_REFERENCES,
    PR_SENDER_ADDRTYPE,
    PR_SENDER_EMAIL,
    PR_SENDER_NAME,
    PR_SENDER_SMTP,
    PR_SENT_REPRESENTING_ADDRTYPE,
    PR_SENT_REPRESENTING_EMAIL,
    PR_SENT_REPRESENTING_NAME,
    PR_SENT_REPRESENTING_SMTP,
    PR_SMTP_ADDRESS,
    PR_SUBJECT,
    PR_TRANSPORT_HEADERS,
)

CRLF = "\r\n"
# Headers that describe the body structure of the original: the body is rebuilt, so ours
# replace them.
_STRUCTURE_HEADERS = {"content-type", "content-transfer-encoding", "mime-version",
                      "content-disposition", "content-id", "content-description",
                      "content-length", "content-md5"}
_FIELD = re.compile(r"^([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_RECIPIENT_HEADERS = {1: "To", 2: "Cc", 3: "Bcc"}
_ADDRESS_FIELDS = {"from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-to",
                   "resent-cc", "resent-sender"}
_IMPORTANCE = {0: "low", 2: "high"}


def subject(props: PropertyBag) -> str:
    """PR_SUBJECT without the length marker Outlook puts before a prefix ('\\x01\\x04RE: ')."""
    value = props.text(PR_SUBJECT) or ""
    if len(value) >= 2 and value[0] == "\x01":
        value = value[2:]
    return value


def message_date(props: PropertyBag) -> datetime | None:
    """When the item was sent (or received, or created), in UTC."""
    for tag in (PR_CLIENT_SUBMIT_TIME, PR_MESSAGE_DELIVERY_TIME, PR_CREATION_TIME,
                PR_LAST_MODIFICATION_TIME):
        value = props.time(tag)
        if value is not None:
            return value
    return None


def header_lines(item: Item) -> list[str]:
    """The message's header fields (without MIME structure headers), each folded, no CRLF."""
    transport = item.props.text(PR_TRANSPORT_HEADERS)
    if transport and _FIELD.match(transport.lstrip()):
        fields = _transport_fields(transport)
        present = {name for name, _ in fields}
        lines = [text for name, text in fields if name not in _STRUCTURE_HEADERS]
        # A few stores keep only the Received lines; what is missing comes from properties.
        lines += [line for _, line in _built_fields(item, present)]
        return lines
    return [line for _, line in _built_fields(item)]


def _transport_fields(text: str) -> list[tuple[str, str]]:
    """(lower-case name, field text with its folding) for each field of a header block."""
    fields: list[tuple[str, list[str]]] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if fields:
                break  # the end of the header block
            continue
        if line[0] in " \t" and fields:
            fields[-1][1].append(line)
            continue
        match = _FIELD.match(line)
        if match:
            fields.append((match.group(1).lower(), [line]))
        elif fields:
            fields[-1][1].append(" " + line)  # a broken continuation line, kept
    return [(name, _ascii(CRLF.join(lines))) for name, lines in fields]


def _ascii(field: str) -> str:
    """A transport header field with raw non-ASCII text made RFC 2047 (an address field only
    in its display names, so the addresses stay readable)."""
    if field.isascii():
        return field
    name, _, value = field.partition(":")
    value = " ".join(value.split())
    if name.strip().lower() in _ADDRESS_FIELDS:
        mailboxes = [formataddr(pair, charset="utf-8") for pair in getaddresses([value])
                     if pair[1].isascii()]
        if mailboxes:
            return f"{name}: " + ("," + CRLF + " ").join(mailboxes)
    return encode_field(name, value)


def _built_fields(item: Item, present: frozenset[str] | set[str] = frozenset()
                  ) -> list[tuple[str, str]]:
    """The fields built from the item's properties, but for those named in ``present`` (the
    transport headers have them: building them only to drop them was a fifth of the
    builder's time)."""
    props = item.props
    fields: list[tuple[str, str]] = []
    if not {"from", "sender"} <= present:
        shown_as = _sender(props)
        acting = (props.text(PR_SENDER_NAME),
                  _smtp(props, PR_SENDER_SMTP, PR_SENDER_EMAIL, PR_SENDER_ADDRTYPE))
        sender = _mailbox(*shown_as)
        if sender and "from" not in present:
            fields.append(("from", "From: " + sender))
        # The same name and address make the same mailbox: no Sender field, nothing to
        # format (most items, and every received one whose From the transport headers give).
        if "sender" not in present and acting != shown_as:
            actual = _mailbox(*acting)
            if actual and sender and actual.lower() != sender.lower():
                fields.append(("sender", "Sender: " + actual))
    wanted = {kind for kind, name in _RECIPIENT_HEADERS.items() if name.lower() not in present}
    if wanted:
        by_type = _recipients(item, wanted)
        for kind, name in _RECIPIENT_HEADERS.items():
            if by_type.get(kind):
                fields.append((name.lower(),
                               f"{name}: " + ("," + CRLF + " ").join(by_type[kind])))
    if "subject" not in present:
        fields.append(("subject", encode_field("Subject", subject(props))))
    date = message_date(props) if "date" not in present else None
    if date is not None:
        fields.append(("date", "Date: " + format_datetime(date)))
    for tag, name in ((PR_INTERNET_MESSAGE_ID, "Message-ID"), (PR_IN_REPLY_TO, "In-Reply-To"),
                      (PR_REFERENCES, "References")):
        if name.lower() in present:
            continue
        value = " ".join((props.text(tag) or "").split())
        if value and value.isascii():
            fields.append((name.lower(), f"{name}: {value}"))
    importance = _IMPORTANCE.get(props.integer(PR_IMPORTANCE) or 1)
    if importance and "importance" not in present:
        fields.append(("importance", f"Importance: {importance}"))
    return fields


def _recipients(item: Item, kinds: set[int]) -> dict[int, list[str]]:
    """The item's recipients of the given types (1 To, 2 Cc, 3 Bcc) as mailboxes, by type
    (those of other types are not formatted at all)."""
    props = item.props
    by_type: dict[int, list[str]] = {}
    for recipient in item.recipients:
        kind = recipient.integer(PR_RECIPIENT_TYPE) or 1
        if kind not in kinds:
            continue
        mailbox = _mailbox(recipient.text(PR_DISPLAY_NAME), _recipient_address(recipient))
        if mailbox:
            by_type.setdefault(kind, []).append(mailbox)
    if not item.recipients:
        # An item without a recipient table still shows who it went to, by name.
        for kind, tag in ((1, PR_DISPLAY_TO), (2, PR_DISPLAY_CC), (3, PR_DISPLAY_BCC)):
            names = [n.strip() for n in (props.text(tag) or "").split(";") if n.strip()]
            if names and kind in kinds:
                by_type[kind] = [_mailbox(n, None) for n in names]
    return by_type


def _sender(props: PropertyBag) -> tuple[str | None, str | None]:
    """The name and address From shows: whom the item was sent for, else who sent it."""
    name = props.text(PR_SENT_REPRESENTING_NAME)
    address = _smtp(props, PR_SENT_REPRESENTING_SMTP, PR_SENT_REPRESENTING_EMAIL,
                    PR_SENT_REPRESENTING_ADDRTYPE)
    if not name and not address:
        name = props.text(PR_SENDER_NAME)
        address = _smtp(props, PR_SENDER_SMTP, PR_SENDER_EMAIL, PR_SENDER_ADDRTYPE)
    return name, address


def _smtp(props: PropertyBag, smtp_tag: int, email_tag: int, type_tag: int) -> str | None:
    """An Internet address: the SMTP property, else the address when its type is SMTP."""
    smtp = props.text(smtp_tag)
    if smtp and "@" in smtp:
        return smtp.strip()
    address = props.text(email_tag)
    kind = (props.text(type_tag) or "SMTP").upper()
    if address and "@" in address and kind in ("SMTP", "MAILTO", ""):
        return address.strip()
    return None


def _recipient_address(recipient: PropertyBag) -> str | None:
    return _smtp(recipient, PR_SMTP_ADDRESS, PR_EMAIL_ADDRESS, PR_ADDRTYPE)


def _mailbox(name: str | None, address: str | None) -> str:
    """'Name <address>' (RFC 2047 encoded name), or the quoted name alone for an Exchange
    address that has no Internet form."""
    name = " ".join((name or "").split())
    if address:
        if name == address:
            name = ""
        return formataddr((name, address), charset="utf-8")
    if not name:
        return ""
    if name.isascii():
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return Header(name, "utf-8").encode()


def encode_field(name: str, value: str) -> str:
    """One header field, RFC 2047 encoded and folded when it is not plain short ASCII."""
    value = " ".join(value.split())
    if value.isascii() and len(name) + len(value) < 998:
        return f"{name}: {value}"
    encoded = Header(value, "utf-8", header_name=name).encode(linesep=CRLF)
    return f"{name}: {encoded}"
