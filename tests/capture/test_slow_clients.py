"""Clients that hold the endpoint without sending mail (slowloris): connections per client
address, the slots kept for other addresses, and deadlines for a command and for DATA."""

from __future__ import annotations

import json
import select
import smtplib
import socket
import time
from collections.abc import Callable, Iterator

from mailvault.capture.access import AccessPolicy
from mailvault.capture.smtp import TOO_MANY, TOO_MANY_FROM_CLIENT, Gate
from mailvault.capture.status import CaptureStatus
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, message_count, wait_until

Serving = Callable[..., Running]
GIVE_UP_S = 10.0


def test_the_gate_keeps_slots_for_addresses_not_yet_connected() -> None:
    gate = Gate(AccessPolicy((), frozenset(), frozenset()), CaptureStatus(), max_connections=10,
                per_client=3, reserve=3)
    assert [gate.admit("192.0.2.1") for _ in range(4)] == [None, None, None,
                                                           TOO_MANY_FROM_CLIENT]
    assert [gate.admit("192.0.2.2") for _ in range(3)] == [None, None, None]
    # Three slots left: each goes only to an address that holds none yet.
    assert gate.admit("192.0.2.3") is None
    assert gate.admit("192.0.2.3") == TOO_MANY_FROM_CLIENT
    assert gate.admit("2001:db8::1") is None
    assert gate.admit("2001:db8::2") == TOO_MANY_FROM_CLIENT  # the same /64
    assert gate.admit("::ffff:192.0.2.4") is None
    assert gate.admit("192.0.2.4") == TOO_MANY_FROM_CLIENT  # the same client
    assert gate.admit("192.0.2.5") is None
    assert gate.admit("192.0.2.6") == TOO_MANY
    gate.release("192.0.2.1")
    assert gate.admit("192.0.2.1") == TOO_MANY_FROM_CLIENT  # it still holds two
    assert gate.admit("192.0.2.6") is None


def _connections(port: int, source: str, count: int) -> Iterator[tuple[socket.socket, bytes]]:
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                        source_address=(source, 0))
        yield sock, sock.makefile("rb").readline()


def test_a_dripping_flood_from_one_address_leaves_room_for_others(vault: Vault,
                                                                  serving: Serving) -> None:
    vault.settings.smtp.max_connections = 8
    vault.settings.smtp.max_connections_per_client = 3
    running = serving()
    drips = list(_connections(running.port(), "127.0.0.2", 10))
    try:
        assert [greeting[:3] for _, greeting in drips] == [b"220"] * 3 + [b"421"] * 7
        for sock, _ in drips[:3]:
            sock.sendall(b"NO")  # a command begun and never finished
        with smtplib.SMTP("127.0.0.1", running.port(), timeout=10,
                          source_address=("127.0.0.3", 0)) as client:
            client.sendmail("a@example.org", ["b@example.org"], build("through the flood"))
        wait_until(lambda: message_count(vault) == 1, what="the message in the vault")
    finally:
        for sock, _ in drips:
            sock.close()


def drip(sock: socket.socket, data: bytes, every_s: float = 0.05) -> tuple[bytes, float]:
    """Send ``data`` a byte at a time (then more 'x'), until the server answers or GIVE_UP_S
    has passed; the answer (b"" if none) and the seconds it took."""
    started = time.monotonic()
    stream = iter(data + b"x" * 10_000)
    while time.monotonic() - started < GIVE_UP_S:
        try:
            sock.sendall(bytes([next(stream)]))
        except OSError:
            break  # hung up on
        readable, _, _ = select.select([sock], [], [], every_s)
        if readable:
            break
    sock.settimeout(1)
    try:
        answer = sock.recv(1024)
    except TimeoutError:
        answer = b""
    return answer, time.monotonic() - started


def _talk(sock: socket.socket, command: bytes) -> bytes:
    sock.sendall(command + b"\r\n")
    reply = b""
    while not reply.endswith(b"\r\n") or reply.split(b"\r\n")[-2][3:4] == b"-":
        reply += sock.recv(4096)
    return reply


def test_a_dripping_command_is_cut_off_at_its_deadline(vault: Vault, serving: Serving) -> None:
    vault.settings.smtp.command_deadline_s = 0.5
    running = serving()
    with socket.create_connection(("127.0.0.1", running.port()), timeout=10) as sock:
        assert sock.recv(1024).startswith(b"220")
        assert _talk(sock, b"EHLO client.test").startswith(b"250")  # a whole line: no deadline
        answer, took = drip(sock, b"NOOP")
        assert answer.startswith(b"421 4.4.2"), answer
        assert took >= 0.5
        assert sock.recv(1024) == b""  # and hung up on
    running.stop()
    status = json.loads((vault.path / "serve-status.json").read_text())
    assert status["refused"] == {"command too slow": 1}


def test_dripping_data_is_cut_off_at_its_deadline(vault: Vault, serving: Serving) -> None:
    vault.settings.smtp.data_deadline_s = 0.5
    running = serving()
    with socket.create_connection(("127.0.0.1", running.port()), timeout=10) as sock:
        assert sock.recv(1024).startswith(b"220")
        for command in (b"EHLO client.test", b"MAIL FROM:<a@example.org>",
                        b"RCPT TO:<b@example.org>"):
            assert _talk(sock, command).startswith(b"250")
        assert _talk(sock, b"DATA").startswith(b"354")
        answer, took = drip(sock, b"Subject: slow\r\n\r\n")
        assert answer.startswith(b"421 4.4.2"), answer
        assert took >= 0.5
    running.stop()
    status = json.loads((vault.path / "serve-status.json").read_text())
    assert status["refused"] == {"message too slow": 1} and status["accepted"] == {}
