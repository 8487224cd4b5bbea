"""What the pipeline receives for one captured message: journal reports unwrapped, envelope
headers recorded.

The spool keeps the bytes exactly as they arrived; this is applied when they are drained, so a
replay after a crash treats them the same way.
"""

from __future__ import annotations

import dataclasses
import re

from mailvault.capture.journal_report import JOURNAL_HEADER, unwrap
from mailvault.records import Incoming, Provenance

# Headers in which MTAs and delivery agents record envelope recipients.
ENVELOPE_HEADERS = (b"x-envelope-to", b"delivered-to")
_ADDRESS = re.compile(rb"[^\s,;<>\"]+@[^\s,;<>\"]+")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def to_incoming(raw: bytes, provenance: Provenance) -> Incoming:
    """The Incoming for a captured message (a journal report becomes its original)."""
    # Most messages are neither journal reports nor carry envelope headers: a substring test
    # on the lower-cased header block spares them the header parsing (a header named so
    # cannot be there without its name appearing in it).
    report = unwrap(raw) if JOURNAL_HEADER in _head(raw).lower() else None
    if report is not None:
        extra = dict(provenance.extra)
        extra["journal"] = "exchange"
        extra["journal_envelope_from"] = provenance.envelope_from or ""
        extra["journal_envelope_to"] = ", ".join(provenance.envelope_to)
        if report.message_id:
            extra["journal_message_id"] = report.message_id
        provenance = dataclasses.replace(
            provenance, envelope_from=report.sender or provenance.envelope_from,
            envelope_to=report.recipients or provenance.envelope_to,
            extra=tuple(sorted(extra.items())))
        raw = report.original
    return Incoming(raw, _with_envelope_headers(raw, provenance))


def _with_envelope_headers(raw: bytes, provenance: Provenance) -> Provenance:
    """Record X-Envelope-To / Delivered-To: their addresses join the envelope recipients."""
    head = _head(raw)
    lowered = head.lower()
    if not any(name in lowered for name in ENVELOPE_HEADERS):
        return provenance
    found: dict[str, list[str]] = {}
    name = b""
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t"):
            value = line
        else:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
        if name in ENVELOPE_HEADERS:
            for address in _ADDRESS.findall(value):
                found.setdefault(name.decode(), []).append(address.decode("utf-8", "replace"))
    if not found:
        return provenance
    extra = dict(provenance.extra)
    recipients = list(provenance.envelope_to)
    known = {r.lower() for r in recipients}
    for header, addresses in found.items():
        extra[header] = ", ".join(addresses)
        for address in addresses:
            if address.lower() not in known:
                known.add(address.lower())
                recipients.append(address)
    return dataclasses.replace(provenance, envelope_to=tuple(recipients),
                               extra=tuple(sorted(extra.items())))


def _head(raw: bytes) -> bytes:
    """The header block (everything before the first empty line)."""
    match = _HEADER_END.search(raw)
    return raw[:match.start()] if match else raw
