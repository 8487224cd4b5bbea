"""Links to a message's parts that prove themselves: what the sandboxed mail frame asks for.

The frame document comes with the session cookie, but the frame's own requests (its ``cid:``
images) come from an opaque origin, cross-site, and carry no SameSite cookie. So each part
link carries the session id, an expiry and an HMAC over (session, message, part, expiry)
with a key this process made at start: the part route checks the MAC, that the session is
still live, and then asks the use case as that session's principal (so roles, scope and the
audit entry are as for any download). A link is worth one part of one message, for one
session, for PART_LINK_S; a restart makes the open frames' links stale (reload the page).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from mailvault.accounts.sessions import Session
from mailvault.errors import AuthenticationError

PART_LINK_S = 600
LINK_REFUSED = "this link to a part of a message has expired: reload the message."


@dataclass(frozen=True)
class PartLinks:
    """Makes and checks part links with this process's key."""

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def _mac(self, session_id: int, message_id: int, number: int, expires: int) -> str:
        text = f"part {session_id} {message_id} {number} {expires}".encode()
        return hmac.new(self.key, text, hashlib.sha256).hexdigest()

    def link(self, session: Session, message_id: int, number: int, *,
             at: float | None = None) -> str:
        expires = int(time.time() if at is None else at) + PART_LINK_S
        query = urlencode({"s": session.id, "e": expires,
                           "k": self._mac(session.id, message_id, number, expires)})
        return f"/messages/{message_id}/parts/{number}?{query}"

    def check(self, session_id: int, message_id: int, number: int, expires: int, mac: str,
              *, at: float | None = None) -> None:
        """AuthenticationError unless the link was made here, for this part, and is fresh."""
        expected = self._mac(session_id, message_id, number, expires)
        if not hmac.compare_digest(expected, mac):
            raise AuthenticationError(LINK_REFUSED, reason="bad part link")
        if expires < (time.time() if at is None else at):
            raise AuthenticationError(LINK_REFUSED, reason="part link expired")
