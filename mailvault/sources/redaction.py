"""Credentials scrubbed from what a server says, before it is recorded or shown.

A server may echo the command it refuses: ``a1 NO LOGIN alice s3cret failed``, ``-ERR PASS
s3cret``, or the base64 of an AUTH PLAIN token. Its reply becomes a SourceError's text, and
that text goes into the catalog (source_runs, failures) and onto the screen (status, source
list/show, sync). So the sessions (imap.py, pop3.py) pass every reply they put into an error
through ``Redactor.scrub`` where they read it, and the password is replaced in each form it
was sent in: as typed, as an IMAP quoted string, and in base64 at any alignment (AUTH PLAIN
and LOGIN; the token's other parts, the user names, are not secret). Only the server's words
are scrubbed: a password such as "wrong" must not eat the "wrong" of our own sentences.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

REDACTED = "[password]"
# A base64 fragment shorter than one group (4 characters) would match by chance.
_MIN_FRAGMENT = 4


@dataclass(frozen=True)
class Redactor:
    """Removes one password, in every form it may come back in, from text."""

    forms: tuple[str, ...]

    @classmethod
    def of(cls, password: str, tokens: tuple[str, ...] = ()) -> Redactor:
        """A redactor for ``password`` and the SASL ``tokens`` built from it (each also
        removed whole in base64, so a token echoed in full becomes one mark)."""
        secret = password.encode("utf-8")
        quoted = password.replace("\\", "\\\\").replace('"', '\\"')
        whole = [base64.b64encode(t.encode("utf-8")).decode("ascii") for t in tokens]
        forms = {f for f in (password, quoted, *whole, *_base64_fragments(secret)) if f}
        # Longest first: a form inside a longer one must not break that one's match.
        return cls(tuple(sorted(forms, key=len, reverse=True)))

    def scrub(self, text: str) -> str:
        """``text`` with every form of the password replaced by a mark."""
        for form in self.forms:
            text = text.replace(form, REDACTED)
        return text


def _base64_fragments(secret: bytes) -> list[str]:
    """What any base64 text that holds ``secret`` certainly contains, whatever the secret's
    offset in the encoded bytes: for each of the three alignments, the encoding of the
    secret's bytes that fill whole 3-byte groups (their characters do not depend on the
    bytes around them)."""
    fragments = []
    for lead in range(3):
        body = secret[lead:]
        body = body[:len(body) - len(body) % 3]
        encoded = base64.b64encode(body).decode("ascii")
        if len(encoded) >= _MIN_FRAGMENT:
            fragments.append(encoded)
    return fragments
