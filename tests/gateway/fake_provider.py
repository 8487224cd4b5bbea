"""A small POP3 provider without TLS, for the proxy's refusal test: it greets, answers CAPA
without STLS (or with an STLS it cannot start), and records every command line it is sent, so
a test can check that no password ever reached it."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class FakeProvider:
    """Listens on 127.0.0.1 (port 0) in a thread until ``close``."""

    offers_stls: bool = False
    received: list[bytes] = field(default_factory=list)
    _sock: socket.socket = field(default_factory=socket.socket)

    def __post_init__(self) -> None:
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def saw_password(self) -> bool:
        return any(line.upper().startswith((b"PASS", b"AUTH", b"APOP"))
                   for line in self.received)

    def close(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            # The proxy first tries TLS here, gets the plaintext greeting and hangs up: a
            # connection that breaks is only the end of that connection.
            with contextlib.suppress(OSError), conn, conn.makefile("rb") as lines:
                conn.sendall(b"+OK fake provider ready\r\n")
                for line in lines:
                    if self._answer(conn, line.rstrip(b"\r\n")):
                        break

    def _answer(self, conn: socket.socket, line: bytes) -> bool:
        """Reply to one command line; True when the connection is to end."""
        self.received.append(line)
        command = line.split(b" ")[0].upper()
        if command == b"CAPA":
            conn.sendall(b"+OK\r\nUSER\r\nUIDL\r\n"
                         + (b"STLS\r\n" if self.offers_stls else b"") + b".\r\n")
            return False
        if command == b"QUIT":
            conn.sendall(b"+OK bye\r\n")
            return True
        if command == b"STLS" and self.offers_stls:
            # Says yes, then hangs up instead of speaking TLS: the handshake fails, and the
            # proxy must not go on in plaintext.
            conn.sendall(b"+OK go ahead\r\n")
            return True
        conn.sendall(b"+OK\r\n")
        return False
