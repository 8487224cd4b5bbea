"""The gateway writer: a process of its own that seals and stores the SMTP endpoint's mailbox
mail, as the archiver is one for the journal.

Sealing a message (an X25519 agreement, HKDF, AES-GCM), appending it and waiting for its
fsync cost the SMTP process, on one core, more than its sessions; with the journal, the spool
costs the SMTP process little and the archiver works on the other core. So the endpoint hands
each message for mailboxes over a socketpair (memory only: nothing in clear on disk) to this
process, which answers once the message is durable (``writer_wire.py``). ``writer_link.py`` is
the serving side.

The loop takes every request that has come (a batch: all the sessions waiting meanwhile),
seals each, appends them to their mailboxes' segments, syncs each segment once for the batch
(``GatewayMailboxes.commit_together``) and only then replies. One thread, no hand-offs: while
it syncs, the next requests gather in the socket and make the next batch.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from mailvault import lifeline
from mailvault.errors import GatewayError, StorageFullError
from mailvault.gateway import writer_wire
from mailvault.gateway.mailboxes import GatewayMailboxes, Staged

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
    buffer = bytearray()
    open_ = True
    while True:
        requests = writer_wire.take_requests(buffer)
        if requests:
            try:
                sock.sendall(b"".join(deliver_batch(mailboxes, requests)))
            except OSError:
                return  # the serving side is gone: no one waits for the replies
            continue
        if not open_:
            return
        chunk = sock.recv(RECEIVE_BYTES)
        if not chunk:
            return
        buffer += chunk
        open_ = _take_waiting(sock, buffer)


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


def deliver_batch(mailboxes: GatewayMailboxes,
                  requests: list[writer_wire.Delivery]) -> list[bytes]:
    """Seal and store a batch of requests (one fsync per mailbox); their replies."""
    replies: list[bytes] = []
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
            replies.append(writer_wire.reply(delivery.request, exc))
            continue
        staged.append((delivery.request, copies))
    errors = mailboxes.commit_together([copies for _, copies in staged])
    replies += [writer_wire.reply(number, error)
                for (number, _), error in zip(staged, errors, strict=True)]
    return replies
