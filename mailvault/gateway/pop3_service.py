"""The gateway's POP3 service (`serve --pop3`, `[gateway] pop3_listen`): any archiver that pulls
over POP3 collects a mailbox's mail. User = mailbox id, password = mailbox password.

``pop3_server.py`` speaks the protocol; this module is the asyncio edge: it offers STLS when
the gateway has a certificate and takes a password without TLS only from loopback, unlocks the
mailbox (Argon2id, off the event loop), lists and decrypts messages, and deletes only what the
client marked, after its QUIT. One session at a time per mailbox (RFC 1939 8: the maildrop is
locked), so two pullers cannot both be told the same message is theirs to delete.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import TYPE_CHECKING

from mailvault.errors import ConfigError, MailvaultError
from mailvault.gateway.mailboxes import GatewayMailboxes, OpenMailbox
from mailvault.gateway.pop3_connection import (
    CLIENT_IDLE_S,
    Connection,
    Listeners,
    check_listen,
    server_tls,
)
from mailvault.gateway.pop3_login import ERR_LOGIN, Close, Login, Send, StartTls
from mailvault.gateway.pop3_server import (
    Action,
    Entry,
    Pop3Server,
    Retrieve,
    ServerOptions,
    Update,
)

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext

ERR_IN_USE = b"-ERR [IN-USE] The mailbox is open in another session\r\n"
STOP_GRACE_S = 5.0
log = logging.getLogger(__name__)


class Pop3Service:
    """The POP3 service of ``mailvault serve``: STLS listeners and POP3S listeners."""

    name = "pop3"

    def __init__(self, mailboxes: GatewayMailboxes, listen: list[str], tls_listen: list[str],
                 tls: ssl.SSLContext | None) -> None:
        check_listen(listen, tls, "POP3")
        if tls_listen and tls is None:
            raise ConfigError("[gateway] pop3_tls_listen needs tls_cert and tls_key.")
        self.mailboxes = mailboxes
        self.listen = listen
        self.tls_listen = tls_listen
        self.tls = tls
        self._locked: set[str] = set()
        self._listeners = Listeners("pop3", self._session, CLIENT_IDLE_S)

    async def start(self) -> list[str]:
        """Listen on every address; returns what listens ('pop3 127.0.0.1:1110')."""
        opened = [await self._listeners.open(text, None) for text in self.listen]
        return opened + [await self._listeners.open(text, self.tls)
                         for text in self.tls_listen]

    async def stop(self) -> None:
        """Stop listening; sessions get a moment, then are dropped (deleting nothing)."""
        await self._listeners.stop(STOP_GRACE_S)

    async def _session(self, connection: Connection, implicit_tls: bool) -> None:
        await Pop3Session(self, connection, implicit_tls).run()

    def lock(self, mailbox_id: str) -> bool:
        """Take the mailbox for one session (False: another session holds it)."""
        if mailbox_id in self._locked:
            return False
        self._locked.add(mailbox_id)
        return True

    def unlock(self, mailbox_id: str) -> None:
        self._locked.discard(mailbox_id)


class Pop3Session:
    """One client connection: feeds the machine and carries out its actions."""

    def __init__(self, service: Pop3Service, connection: Connection,
                 implicit_tls: bool) -> None:
        self.service = service
        self.connection = connection
        self.machine = Pop3Server(ServerOptions(
            tls_active=implicit_tls, tls_available=service.tls is not None,
            plaintext_allowed=connection.loopback))
        self.mailbox_id: str | None = None
        self.opened: OpenMailbox | None = None
        self.closed = False

    async def run(self) -> None:
        try:
            await self._perform(self.machine.start())
            while not self.closed:
                data = await self.connection.read()
                if not data:
                    return  # gone before QUIT: nothing is deleted
                await self._perform(self.machine.receive(data))
        finally:
            if self.mailbox_id is not None:
                self.service.unlock(self.mailbox_id)

    async def _perform(self, actions: list[Action]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, Send):
                if queue and isinstance(queue[0], StartTls):
                    self.connection.pause_reading()
                await self.connection.send(action.data)
            elif isinstance(action, Close):
                self.closed = True
            elif isinstance(action, StartTls):
                assert self.service.tls is not None
                await self.connection.start_tls(self.service.tls)
                queue += self.machine.tls_started()
            elif isinstance(action, Login):
                queue += await self._login(action)
            elif isinstance(action, Retrieve):
                queue += await self._retrieve(action.key)
            elif isinstance(action, Update):
                queue += await self._update(action.keys)

    async def _login(self, login: Login) -> list[Action]:
        loop = asyncio.get_running_loop()
        try:
            opened = await loop.run_in_executor(None, self.service.mailboxes.unlock,
                                                login.user, login.password)
        except MailvaultError:
            log.info("POP3 login to mailbox %r from %s refused", login.user[:80],
                     self.connection.peer)
            return self.machine.login_refused(ERR_LOGIN)
        if not self.service.lock(login.user):
            return self.machine.login_refused(ERR_IN_USE)
        self.mailbox_id = login.user
        self.opened = opened
        try:
            stored = await loop.run_in_executor(None, opened.messages)
        except MailvaultError as exc:
            log.warning("POP3: mailbox %s cannot be listed: %s", login.user, exc)
            self.service.unlock(login.user)
            self.mailbox_id = None
            return self.machine.login_refused(b"-ERR [SYS/TEMP] The mailbox cannot be read\r\n")
        log.info("POP3 login to mailbox %s from %s", login.user, self.connection.peer)
        entries = [Entry(m.id, m.size, m.uidl) for m in stored]
        return self.machine.logged_in(login.user, entries)

    async def _retrieve(self, key: str) -> list[Action]:
        assert self.opened is not None
        try:
            raw = await asyncio.get_running_loop().run_in_executor(None, self.opened.read, key)
        except MailvaultError as exc:
            # A message that fails its check is reported, never served.
            log.warning("POP3: message %s of mailbox %s cannot be read: %s", key,
                        self.mailbox_id, exc)
            return self.machine.retrieve_failed(b"The message cannot be read")
        return self.machine.retrieved(raw)

    async def _update(self, keys: tuple[str, ...]) -> list[Action]:
        assert self.opened is not None
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.opened.delete,
                                                             list(keys))
        except MailvaultError as exc:
            log.warning("POP3: deletions in mailbox %s failed: %s", self.mailbox_id, exc)
            return self.machine.update_failed(b"The messages could not be deleted")
        log.info("POP3: mailbox %s: %d messages deleted after QUIT", self.mailbox_id,
                 len(keys))
        return self.machine.updated()


def pop3_service(context: ServeContext) -> Pop3Service | None:
    """The gateway's POP3 service, unless no address is configured."""
    settings = context.vault.settings.gateway
    listen = context.overrides.get("pop3", settings.pop3_listen)
    tls_listen = settings.pop3_tls_listen
    if not listen and not tls_listen:
        return None
    tls = server_tls(settings.tls_cert, settings.tls_key, "gateway")
    return Pop3Service(GatewayMailboxes.of(context.vault.path, settings), listen, tls_listen, tls)
