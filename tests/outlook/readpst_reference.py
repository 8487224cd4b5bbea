"""What Debian's readpst makes of a PST, and the same facts about mailvault's conversion, in
one comparable shape: per email, subject, sender, recipients, date, attachments and body."""

from __future__ import annotations

import email
import email.message
import email.policy
import mailbox
import subprocess
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailvault.outlook.source import OutlookTally, pst_items
from mailvault.records import Incoming


@dataclass(frozen=True)
class Facts:
    """What both sides must agree on for one email."""

    folder: str
    subject: str
    sender: str
    recipients: tuple[str, ...]
    date: datetime | None
    attachments: tuple[tuple[str, int], ...]
    body: str

    @property
    def key(self) -> tuple[str, str]:
        return self.folder, self.subject


def readpst_emails(pst: Path, out: Path) -> list[Facts]:
    """Every email readpst writes for a PST (``readpst -t e``, one mbox per folder)."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["readpst", "-q", "-t", "e", "-o", str(out), str(pst)], check=True,
                   capture_output=True, timeout=120)
    found = []
    for path in sorted(out.rglob("*")):
        if path.is_file():
            box = mailbox.mbox(path, create=False)
            try:
                for message in box:
                    found.append(facts(message.as_bytes(), path.name.removesuffix(".mbox")))
            finally:
                box.close()
    return found


def mailvault_emails(pst: Path) -> tuple[list[Facts], OutlookTally]:
    """Every email mailvault makes of a PST, and the tally of the other items."""
    tally = OutlookTally()
    found = []
    for item in pst_items(pst, None, tally, lambda _size: None):
        assert isinstance(item, Incoming), item
        if dict(_kinds(item.raw)).get("x-kind") is None:
            found.append(facts(item.raw, (item.provenance.folder or "").rsplit("/", 1)[-1]))
    return found, tally


def _kinds(raw: bytes) -> list[tuple[str, str]]:
    # Converted calendar items and contacts carry a text/calendar or text/vcard part.
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return [("x-kind", part.get_content_type()) for part in message.walk()
            if part.get_content_type() in ("text/calendar", "text/vcard")]


def facts(raw: bytes, folder: str) -> Facts:
    """The comparable facts of one message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    sender = ",".join(a.addr_spec.lower() for a in message["from"].addresses) \
        if message["from"] else ""
    recipients = sorted(a.addr_spec.lower() for name in ("to", "cc")
                        for header in message.get_all(name, [])
                        for a in header.addresses)
    date = message["date"].datetime if message["date"] else None
    attachments = [(part.get_filename() or "", len(part.get_payload(decode=True) or b""))
                   for part in _leaves(message) if part.get_filename()]
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    return Facts(folder, str(message["subject"] or ""), sender, tuple(recipients), date,
                 tuple(sorted(attachments)), " ".join(text.split()))


def _leaves(message: email.message.Message) -> list[email.message.Message]:
    """The leaf parts of a message, not looking inside attached messages."""
    if message.get_content_type() == "message/rfc822":
        return []
    if message.is_multipart():
        return [leaf for part in message.get_payload() for leaf in _leaves(part)]
    return [message]


def assert_reads_as_readpst(pst: Path, out: Path, messages: int) -> list[Facts]:
    """A written PST of ``messages`` emails says to mailvault, email by email, what it says to
    readpst (the writer's unsent copies aside, see below); mailvault's emails."""
    theirs = readpst_emails(pst, out)
    ours, tally = mailvault_emails(pst)
    assert tally.archived == Counter({"email": messages})
    assert tally.unreadable == 0
    assert len(theirs) == len(ours) == messages
    assert Counter(f.folder for f in ours) == Counter(f.folder for f in theirs)
    reference = {f.subject: f for f in theirs}
    differing_bodies = []
    for mine in ours:
        other = reference[mine.subject]
        assert (mine.sender, mine.date, mine.attachments) == (
            other.sender, other.date, other.attachments), mine.subject
        if not same_text(mine.body, other.body):
            differing_bodies.append(mine)
        if mine.folder != "Sent Items":
            # Unsent copies: readpst writes PR_DISPLAY_TO ('a; b') where mailvault writes
            # the recipient table; received ones carry their transport headers on both sides.
            assert mine.recipients == other.recipients, mine.subject
    assert_bodies_agree_on_rereading(pst, out, differing_bodies)
    return ours


def same_text(mine: str, theirs: str) -> bool:
    """The same text but for white space: the two sides wrap long lines differently."""
    return "".join(mine.split()) == "".join(theirs.split())


def assert_bodies_agree_on_rereading(pst: Path, out: Path, differing: list[Facts]) -> None:
    """readpst 0.6.76 now and then writes a UTF-16 plain body as its first letter (seen: 'r'
    for a 1,500-word body, about one run in forty, the same file read again is whole), so a
    body that differs is compared with two more readings; a real difference stays."""
    for attempt in range(2):
        if not differing:
            return
        again = {f.key: f for f in readpst_emails(pst, out / f"again-{attempt}")}
        differing = [mine for mine in differing
                     if not same_text(mine.body, again[mine.key].body)]
    assert not differing, [mine.key for mine in differing]
