"""An independent reading of the shared corpus: which messages an import must archive, with
the exact bytes of each, derived without mailvault's own readers.

- ``eml/``: every file is one message, its bytes exactly as the file holds them.
- ``mbox/``: Python's ``mailbox.mbox`` splits the files (it agrees with mailvault's rule on
  this corpus: 3,034 Enron messages in 10 files, 5 in rlug); the separator line is dropped by
  ``mailbox`` and one ``>`` is removed from ``>+From `` lines here (mboxrd unquoting).
- ``maildir/``: files in ``cur/`` and ``new/`` are messages taken whole; ``tmp/`` (mail still
  being delivered) and dot-files are not read. Other files (loose in a Maildir folder or in a
  plain folder, as in notmuch's corpus) are messages when they have header lines: whole, or
  read as an mbox when they start with a ``From `` line (unless named ``.eml``: an .eml file
  is always one whole message). A file without headers (a README) is not mail.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import hashlib
import mailbox
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

_MBOXRD_QUOTE = re.compile(rb"^>(>*From )", re.M)
_MBOX_START = re.compile(rb"^From (?![ \t]*:)")


@dataclass(frozen=True)
class Expected:
    """One message an import must archive: where it is, and its exact bytes."""

    path: Path
    position: int
    raw: bytes

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def eml_messages(root: Path) -> list[Expected]:
    """Every file below ``root``, whole."""
    return [Expected(p, 0, p.read_bytes()) for p in _files(root)]


def mbox_messages(path: Path) -> list[Expected]:
    """The messages of one mbox file, as ``mailbox`` splits them, >From unquoted."""
    box = mailbox.mbox(path, create=False)
    try:
        return [Expected(path, n, _MBOXRD_QUOTE.sub(rb"\1", box.get_bytes(key)))
                for n, key in enumerate(box.keys())]
    finally:
        box.close()


def maildir_messages(root: Path) -> list[Expected]:
    """Every message of a tree of Maildirs and plain mail folders (see the module doc)."""
    found = []
    for path in _files(root):
        if path.parent.name == "tmp":
            continue
        raw = path.read_bytes()
        if path.parent.name in ("cur", "new") or path.suffix == ".eml":
            found.append(Expected(path, 0, raw))
        elif _MBOX_START.match(raw):
            found.extend(mbox_messages(path))
        elif email.message_from_bytes(raw, policy=email.policy.compat32).keys():
            found.append(Expected(path, 0, raw))
    return found


def corpus_messages(corpus: Path) -> list[Expected]:
    """Every arrival an import of eml/, mbox/ and maildir/ makes (duplicates included)."""
    return (eml_messages(corpus / "eml")
            + [m for box in sorted((corpus / "mbox").rglob("*.mbox")) for m in mbox_messages(box)]
            + maildir_messages(corpus / "maildir"))


def decoded_text(raw: bytes) -> str:
    """Subject and every text part of a message, decoded by the standard library's modern
    policy (independent of mailvault's parser); what cannot be decoded is left out."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    texts = []
    with contextlib.suppress(ValueError, LookupError):
        texts.append(str(msg.get("subject", "")))
    for part in msg.walk():
        if part.get_content_maintype() != "text" or part.is_attachment():
            continue
        try:
            texts.append(part.get_content())
        except (ValueError, LookupError, AttributeError):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                texts.append(payload.decode("utf-8", "replace"))
    return "\n".join(t for t in texts if isinstance(t, str))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in
                                             p.relative_to(root).parts))
