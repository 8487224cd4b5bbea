"""The gateway writer: a process of its own that seals and stores the SMTP endpoint's mailbox
mail, as the archiver is one for the journal.

Sealing a message (an X25519 agreement, HKDF, AES-GCM), appending it and waiting for its
fsync cost the SMTP process, on one core, more than its sessions; with the journal, the spool
costs the SMTP process little and the archiver works on the other core. So the endpoint hands
each message for mailboxes over a socketpair (memory only: nothing in clear on disk) to this
process, which answers once the message is durable (``writer_wire.py``). ``writer_link.py`` is
the serving side.

The main thread takes every request that has come (a batch: all the sessions waiting
meanwhile), seals each and appends them to their mailboxes' segments
(``GatewayMailboxes.write_together``); a second thread syncs each segment once for what was
appended (``settle``) and only then replies. While it syncs (the GIL is free during an fsync),
the main thread seals and appends the next batch: the CPU and the disk work at once.
"""

from __future__ import annotations

import signal
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from mailvault import lifeline
from mailvault.errors import GatewayError, StorageFullError
from mailvault.gateway import writer_wire
from mailvault.gateway.mailboxes import GatewayMailboxes, Staged, WrittenBatch

RECEIVE_BYTES = 1 << 20


def run_writer(folder: str, domain: str, sock: socket.socket, owner: int) -> None:
    """The writer process: store what comes over ``sock`` until the serving side closes it."""
    # Ctrl-C reaches the whole process group; the serving process decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A killed server must not leave the writer behind.
    lifeline.bind_to(owner)
    mailboxes = GatewayMailboxes(Path(folder), domain)
    try:
        serve_deliveries(mailboxes, sock)
    finally:
        mailboxes.close()
        sock.close()


def serve_deliveries(mailboxes: GatewayMailboxes, sock: socket.socket) -> None:
    """Answer the requests on ``sock`` in batches until the other end closes it."""
    replier = _Replier(mailboxes, sock)
    replier.start()
    buffer = bytearray()
    open_ = True
    try:
        while not replier.gone:
            requests = writer_wire.take_requests(buffer)
            if requests:
                replier.put(write_batch(mailboxes, requests))
                continue
            if not open_:
                return
            chunk = sock.recv(RECEIVE_BYTES)
            if not chunk:
                return
            buffer += chunk
            open_ = _take_waiting(sock, buffer)
    finally:
        replier.finish()


def _take_waiting(sock: socket.socket, buffer: bytearray) -> bool:
    """Add to ``buffer`` whatever has come already, without waiting; False at end of file."""
    while True:
        try:
            chunk = sock.recv(RECEIVE_BYTES, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buffer += chunk


@dataclass
class Appended:
    """A batch appended, not yet synced: the replies already known (requests refused before
    any write) and the requests whose copies ``settle`` decides."""

    refused: list[bytes]
    numbers: list[int]
    batch: WrittenBatch


def write_batch(mailboxes: GatewayMailboxes, requests: list[writer_wire.Delivery]) -> Appended:
    """Seal and append a batch of requests' copies (no fsync yet)."""
    refused: list[bytes] = []
    staged: list[tuple[int, list[Staged]]] = []
    for delivery in requests:
        copies: list[Staged] = []
        try:
            for mailbox_id in delivery.mailbox_ids:
                copy = mailboxes.stage(mailbox_id, delivery.raw, durable=False)
                if copy is not None:
                    copies.append(copy)
        except (GatewayError, StorageFullError) as exc:
            for copy in copies:
                copy.abandon()
            refused.append(writer_wire.reply(delivery.request, exc))
            continue
        staged.append((delivery.request, copies))
    return Appended(refused, [number for number, _ in staged],
                    mailboxes.write_together([copies for _, copies in staged]))


class _Replier(threading.Thread):
    """Syncs what the main thread appended and replies (the only thread that sends)."""

    def __init__(self, mailboxes: GatewayMailboxes, sock: socket.socket) -> None:
        super().__init__(name="gateway-writer-sync", daemon=True)
        self._mailboxes = mailboxes
        self._sock = sock
        self._queue: list[Appended | None] = []
        self._ready = threading.Condition()
        self.gone = False  # the serving side stopped reading

    def put(self, appended: Appended | None) -> None:
        with self._ready:
            self._queue.append(appended)
            self._ready.notify()

    def finish(self) -> None:
        """Reply to everything appended, then end."""
        self.put(None)
        self.join()

    def run(self) -> None:
        try:
            self._reply_until_finished()
        except BaseException:
            # Replies would stop for good: end the process instead (the main thread reads
            # end of file now), so the serving side answers 4xx and starts a new writer.
            self.gone = True
            self._sock.shutdown(socket.SHUT_RDWR)
            raise

    def _reply_until_finished(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                taken, self._queue = self._queue, []
            replies: list[bytes] = []
            for appended in taken:
                if appended is None:
                    self._send(replies)
                    return
                errors = self._mailboxes.settle(appended.batch)
                replies += appended.refused
                replies += [writer_wire.reply(number, error)
                            for number, error in zip(appended.numbers, errors, strict=True)]
            self._send(replies)

    def _send(self, replies: list[bytes]) -> None:
        if replies and not self.gone:
            try:
                self._sock.sendall(b"".join(replies))
            except OSError:
                self.gone = True  # no one waits for the replies any more
