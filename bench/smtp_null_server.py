"""Do-nothing SMTP servers (the references for the SMTP benchmark): 250 for everything.

    python bench/smtp_null_server.py PORT [aiosmtpd|mailvault]

``aiosmtpd``: the usual Python SMTP server with a handler that discards. ``mailvault``:
mailvault's own session (``capture/session.py``) with a handler that discards, so the cost
of durability and archiving can be told apart from the cost of speaking SMTP.
"""

from __future__ import annotations

import asyncio
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailvault.capture.session import Client, SessionOptions, SmtpSession, Transaction
from mailvault.config import SmtpSettings


class Discard:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


class DiscardSessions:
    def connected(self, session: SmtpSession) -> str | None:
        return None

    def disconnected(self, session: SmtpSession) -> None:
        """Nothing to count: the reference keeps no state."""

    def refused(self, reason: str) -> None:
        """Nothing to count: the reference keeps no state."""

    def failed(self, error: str) -> None:
        """Nothing to count: the reference keeps no state."""

    def recipient(self, client: Client, address: str) -> str | None:
        return None

    async def login(self, name: str, password: bytes) -> bool:
        return False

    async def deliver(self, client: Client, transaction: Transaction, raw: bytes) -> str:
        return "250 OK"


async def main(port: int, kind: str) -> None:
    loop = asyncio.get_running_loop()
    if kind == "aiosmtpd":
        server = await loop.create_server(
            lambda: SMTP(Discard(), hostname="null", enable_SMTPUTF8=True, loop=loop),
            "127.0.0.1", port)
    else:
        smtp = SmtpSettings()
        options = SessionOptions(hostname="null", size_limit=50 << 20, timeout_s=300,
                                 command_deadline_s=smtp.command_deadline_s,
                                 data_deadline_s=smtp.data_deadline_s,
                                 max_recipients=smtp.max_recipients)
        handler = DiscardSessions()
        server = await loop.create_server(lambda: SmtpSession(handler, options),
                                          "127.0.0.1", port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "aiosmtpd"))
