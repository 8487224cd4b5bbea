"""The serving side of the gateway writer process (``writer_process.py``): starts it, hands it
the SMTP endpoint's mailbox mail on the event loop, and starts it again if it dies.

``deliver`` returns once the writer has replied that the message is durable; if the writer
dies first, every delivery waiting on it fails (the client hears 4xx, never 250), and so does
every delivery until the writer runs again: it is started again at once, or two seconds after
its last start when it keeps dying.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from pathlib import Path

from mailvault.errors import GatewayError
from mailvault.gateway import writer_wire
from mailvault.gateway.writer_process import run_writer

PROCESS_NAME = "mailvault-gateway-writer"
RESTART_AFTER_S = 2.0
_STOP_GRACE_S = 30.0


class WriterLink:
    """The gateway writer process of one gateway folder, as the SMTP endpoint sees it."""

    def __init__(self, folder: Path, domain: str, on_error: Callable[[str], None]) -> None:
        self.folder = folder
        self.domain = domain
        self._on_error = on_error
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._replies = bytearray()
        self._number = 0
        self._started_at = 0.0
        self._stopping = False
        self._restart: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The writer process's id while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the writer process and connect to it."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process = self._context.Process(
            target=run_writer, name=PROCESS_NAME,
            args=(str(self.folder), self.domain, theirs, os.getpid()))
        try:
            process.start()
        finally:
            theirs.close()
        self._process = process
        self._started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(lambda: _Replies(self), sock=ours)
        self._transport = transport

    async def deliver(self, mailbox_ids: list[str], raw: bytes) -> None:
        """Store ``raw`` in these mailboxes: returns once it is durable in every one;
        MailboxUnavailable, StorageFullError or GatewayError (the writer is not running, or
        died before it replied) when it is not."""
        transport = self._transport
        if transport is None or transport.is_closing():
            raise GatewayError("the gateway writer process is not running: the message was "
                               "not stored.")
        self._number = (self._number + 1) & 0xFFFFFFFF
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[self._number] = waiter
        transport.write(writer_wire.request(self._number, mailbox_ids, raw))
        await waiter

    async def stop(self) -> None:
        """Let the writer answer what it holds, then end it."""
        self._stopping = True
        if self._restart is not None:
            self._restart.cancel()
        if self._transport is not None:
            self._transport.close()  # the writer reads end of file once it has answered
        process = self._process
        if process is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, process.join, _STOP_GRACE_S)
            if process.is_alive():
                process.terminate()
                await loop.run_in_executor(None, process.join)

    def _received(self, data: bytes) -> None:
        self._replies += data
        for number, error in writer_wire.take_replies(self._replies):
            waiter = self._pending.pop(number, None)
            if waiter is None or waiter.done():
                continue  # its session has gone meanwhile
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def _lost(self) -> None:
        """The socket closed: the writer died (or is stopping)."""
        self._transport = None
        self._replies.clear()
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(GatewayError(
                    "the gateway writer process stopped before it said the message was "
                    "stored."))
        if not self._stopping:
            self._restart = asyncio.get_running_loop().create_task(self._start_again())

    async def _start_again(self) -> None:
        process = self._process
        loop = asyncio.get_running_loop()
        if process is not None:
            await loop.run_in_executor(None, process.join, _STOP_GRACE_S)
            if process.is_alive():
                process.kill()
                await loop.run_in_executor(None, process.join)
            self._on_error(f"the gateway writer process stopped (exit code "
                           f"{process.exitcode}); starting it again.")
        await asyncio.sleep(max(0.0, self._started_at + RESTART_AFTER_S - time.monotonic()))
        if self._stopping:
            return
        try:
            await self.start()
        except OSError as exc:
            self._on_error(f"the gateway writer process cannot be started: {exc}.")
            self._lost()


class _Replies(asyncio.Protocol):
    """The link's end of the socket."""

    def __init__(self, link: WriterLink) -> None:
        self._link = link

    def data_received(self, data: bytes) -> None:
        self._link._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._link._lost()
