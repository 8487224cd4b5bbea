"""The gateway writer process: it answers a batch once it is durable, and when it dies the
SMTP endpoint answers 4xx (never 250) until `serve` has started it again; SIGKILLed under load,
every message that got its 250 is in the mailbox once and readable."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import smtplib
import socket
import threading
import time
from collections.abc import Callable

import pytest

from mailvault.gateway import writer_wire
from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.gateway.writer_link import PROCESS_NAME
from mailvault.gateway.writer_process import serve_deliveries
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, wait_until

Serving = Callable[..., Running]


def _writer_pids() -> list[int]:
    return [p.pid for p in multiprocessing.active_children()
            if p.name == PROCESS_NAME and p.pid is not None]


def test_a_batch_is_answered_request_by_request(gateway: GatewayMailboxes) -> None:
    """Requests that came together are stored together; each gets its own answer, and an
    unknown mailbox fails only its own request."""
    info, password = gateway.create(None)
    ours, theirs = socket.socketpair()
    serving = threading.Thread(target=serve_deliveries, args=(gateway, theirs))
    serving.start()
    raws = [build(f"batch {n}") for n in range(5)]
    ours.sendall(b"".join(writer_wire.request(n, [info.id], raw) for n, raw in enumerate(raws))
                 + writer_wire.request(9, ["aaaaaaaaaaaa"], b"to nobody"))
    replies: list[tuple[int, object]] = []
    buffer = bytearray()
    while len(replies) < 6:
        buffer += ours.recv(65536)
        replies += writer_wire.take_replies(buffer)
    ours.close()
    serving.join(30)
    theirs.close()
    assert not serving.is_alive(), "the writer did not end at end of file"
    assert sorted(n for n, error in replies if error is None) == [0, 1, 2, 3, 4]
    assert [type(e).__name__ for n, e in replies if n == 9] == ["MailboxUnavailable"]
    opened = gateway.unlock(info.id, password)
    assert sorted(opened.read(m.id) for m in opened.messages()) == sorted(raws)


def test_a_killed_writer_answers_4xx_and_is_started_again(
        vault: Vault, serving: Serving, mailboxes: GatewayMailboxes) -> None:
    info, password = mailboxes.create(None)
    running = serving()
    (writer,) = _writer_pids()
    os.kill(writer, signal.SIGSTOP)  # it takes nothing from its socket now
    outcome: list[object] = []

    def client() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as smtp:
                smtp.sendmail("a@example.org", [info.address], build("In flight"))
            outcome.append(250)
        except smtplib.SMTPDataError as exc:
            outcome.append(exc.smtp_code)

    thread = threading.Thread(target=client)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive() and outcome == [], "answered while the writer was stopped"
    os.kill(writer, signal.SIGKILL)
    thread.join(30)
    assert outcome == [451]
    wait_until(lambda: bool(_writer_pids()) and _writer_pids() != [writer],
               what="the writer started again")
    raw = build("After the restart")
    deadline = time.monotonic() + 30
    while True:  # until the new writer is connected: 451 meanwhile, never 250 unstored
        try:
            with smtplib.SMTP("127.0.0.1", running.port(), timeout=30) as smtp:
                smtp.sendmail("a@example.org", [info.address], raw)
            break
        except smtplib.SMTPDataError as exc:
            assert exc.smtp_code == 451 and time.monotonic() < deadline
            time.sleep(0.1)
    opened = mailboxes.unlock(info.id, password)
    assert [opened.read(m.id) for m in opened.messages()] == [raw]
    wait_until(lambda: "gateway writer process stopped (exit code -9)"
               in (vault.path / "serve-status.json").read_text(), what="the status")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_of_the_writer_under_load_loses_and_doubles_nothing_acknowledged(
        vault: Vault, serving: Serving, mailboxes: GatewayMailboxes) -> None:
    """Eight clients send distinct messages (a refused one is not sent again) while the writer
    is killed three times: every message that got 250 is in the mailbox exactly once, and
    every message there opens."""
    info, password = mailboxes.create(None)
    running = serving()
    acknowledged: set[int] = set()
    refused = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        number = worker
        with smtplib.SMTP("127.0.0.1", running.port(), timeout=60) as smtp:
            while not stop.is_set():
                raw = b"Subject: n%d\r\n\r\n" % number + b"x" * 5000 + b"\r\n"
                try:
                    smtp.sendmail("a@example.org", [info.address], raw)
                    with lock:
                        acknowledged.add(number)
                except smtplib.SMTPDataError as exc:
                    assert exc.smtp_code == 451
                    with lock:
                        refused[0] += 1
                number += 8

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        wait_until(lambda: len(_writer_pids()) == 1, what="a running writer")
        with lock:
            target = len(acknowledged) + 150
        wait_until(lambda: len(acknowledged) >= target, timeout=120,  # noqa: B023
                   what="deliveries through the writer")
        os.kill(_writer_pids()[0], signal.SIGKILL)
    wait_until(lambda: len(_writer_pids()) == 1, what="the last writer")
    with lock:
        target = len(acknowledged) + 50
    wait_until(lambda: len(acknowledged) >= target, timeout=120, what="the last deliveries")
    stop.set()
    for thread in threads:
        thread.join(60)
    assert refused[0] > 0, "no delivery was in flight at a kill"
    opened = mailboxes.unlock(info.id, password)
    found = [int(re.match(rb"Subject: n(\d+)", opened.read(m.id)).group(1))  # type: ignore[union-attr]
             for m in opened.messages()]
    assert len(found) == len(set(found)), "a message was stored twice"
    assert acknowledged <= set(found)
