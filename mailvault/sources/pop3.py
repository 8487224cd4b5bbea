"""A small POP3 client (RFC 1939, STLS from RFC 2595, AUTH PLAIN from RFC 5034).

Written here rather than over poplib because poplib refuses lines over 2,048 bytes, which real
mail has, and hides the bytes as received. Messages come back exactly as the server sent them
(CRLF line ends, dot-stuffing removed). Nothing is deleted unless ``delete`` is called, and the
server applies deletions only at QUIT.
"""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from mailvault.errors import SourceError
from mailvault.sources.imap import Credentials, Endpoint
from mailvault.sources.tls import client_context, network_error

OK = b"+OK"
ERR = b"-ERR"
TERMINATOR = b".\r\n"
# A reply line longer than this is not POP3 (a message line is read without this limit).
MAX_REPLY_LINE = 8192
# A line of a UIDL or LIST answer: a message number, a space, the UIDL or size.
_LISTING_LINE = re.compile(rb"^\s*([0-9]{1,9})[ \t]+(\S+)\s*$")
_SIZE = re.compile(r"^[0-9]{1,18}$")


@dataclass(frozen=True)
class Listed:
    """One message in the maildrop: its number in this session, UIDL and size."""

    number: int
    uidl: str
    size: int


class Pop3Session:
    """One logged-in POP3 connection."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials) -> None:
        self.endpoint = endpoint
        self.user = credentials.authzid or credentials.user
        self._redactor = credentials.redactor()
        context = client_context(endpoint.ca_file, endpoint.insecure_skip_verify)
        # A connection that fails at any step is closed here: the caller has no session.
        try:
            with self._translated("connect"):
                self._sock = socket.create_connection((endpoint.host, endpoint.port),
                                                      endpoint.timeout_s)
                if endpoint.tls == "implicit":
                    self._sock = context.wrap_socket(self._sock, server_hostname=endpoint.host)
                self._file = self._sock.makefile("rb")
                self._expect_ok("greeting")
                if endpoint.tls == "starttls":
                    self._command(b"STLS")
                    self._file.close()
                    self._sock = context.wrap_socket(self._sock, server_hostname=endpoint.host)
                    self._file = self._sock.makefile("rb")
            self._login(credentials)
        except SourceError:
            self.close()
            raise

    def _login(self, credentials: Credentials) -> None:
        with self._translated("login"):
            try:
                if credentials.authzid:
                    token = base64.b64encode(credentials.sasl_plain().encode())
                    self._command(b"AUTH PLAIN " + token)
                else:
                    self._command(b"USER " + credentials.user.encode())
                    self._command(b"PASS " + credentials.password.encode())
            except _Refused as exc:
                raise SourceError(f"{self.endpoint.where} refused the login of {self.user}: "
                                  f"wrong user name or password ({exc}).") from None

    def listing(self) -> list[Listed]:
        """Every message in the maildrop with its UIDL and size."""
        with self._translated("UIDL"):
            self._command(b"UIDL")
            uidls = dict(_pairs(self._multiline()))
            self._command(b"LIST")
            sizes = dict(_pairs(self._multiline()))
            if any(not _SIZE.match(size) for size in sizes.values()):
                raise _Garbled("LIST gave a size that is not a number")
        return [Listed(number, uidls[number], int(sizes.get(number, "0")))
                for number in sorted(uidls)]

    def retrieve(self, number: int) -> bytes:
        """The message's bytes (RETR; POP3 has no flags to disturb)."""
        with self._translated(f"RETR {number}"):
            self._command(b"RETR %d" % number)
            return b"".join(self._multiline())

    def delete(self, number: int) -> None:
        """Mark a message for deletion; the server removes it at QUIT."""
        with self._translated(f"DELE {number}"):
            self._command(b"DELE %d" % number)

    def quit(self) -> None:
        """QUIT: the server commits deletions and closes."""
        with self._translated("QUIT"):
            self._command(b"QUIT")
        self.close()

    def close(self) -> None:
        """Drop the connection without QUIT (deletions are then not applied)."""
        with suppress(OSError, AttributeError):
            # The reader holds the socket open until it is closed too.
            self._file.close()
        with suppress(OSError, AttributeError):
            self._sock.close()

    # -- wire ------------------------------------------------------------------------------

    def _command(self, line: bytes) -> bytes:
        self._sock.sendall(line + b"\r\n")
        return self._expect_ok(line.split(b" ", 1)[0].decode())

    def _expect_ok(self, what: str) -> bytes:
        reply = self._file.readline(MAX_REPLY_LINE)
        if not reply:
            raise ConnectionResetError(0, "the server closed the connection")
        if reply.startswith(OK):
            return reply
        # A server may echo the PASS or AUTH line it refuses: the password goes no further.
        said = self._redactor.scrub(reply.decode("utf-8", "replace").strip())
        raise _Refused(said or f"no reply to {what}")

    def _multiline(self) -> Iterator[bytes]:
        while True:
            line = self._file.readline()
            if not line:
                raise ConnectionResetError(0, "the server closed the connection")
            if line == TERMINATOR:
                return
            yield line[1:] if line.startswith(b"..") else line

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        where = self.endpoint.where
        try:
            yield
        except _Refused as exc:
            raise SourceError(f"{where} refused {action}: {exc}.") from None
        except _Garbled as exc:
            raise SourceError(f"{where} does not speak POP3 during {action}: {exc}.") from None
        except OSError as exc:
            raise network_error(exc, where, action) from None


class _Refused(Exception):
    """A -ERR reply (inside this module only; callers see SourceError)."""


class _Garbled(Exception):
    """An answer that is not POP3 (inside this module only; callers see SourceError)."""


def _pairs(lines: Iterator[bytes]) -> Iterator[tuple[int, str]]:
    for line in lines:
        match = _LISTING_LINE.match(line)
        if match is None:
            raise _Garbled(f"the listing line {line[:60]!r} is not a number and a value")
        yield int(match.group(1)), match.group(2).decode("ascii", "replace")
