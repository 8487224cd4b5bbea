"""POP3's framing (RFC 1939 3), without sockets: bounded command lines in, and multi-line
responses (every line that starts with '.' stuffed with one more, a lone '.' at the end).

The gateway's POP3 service and its POP3 proxy both read command lines with ``LineReader``;
the service writes messages with ``stuffed``; the proxy reads a provider's multi-line
responses with ``MultilineReader`` and gets the message back exactly with ``unstuffed``.
"""

from __future__ import annotations

from dataclasses import dataclass

# RFC 2449 4: a command line is at most 255 octets with its CRLF. Longer lines are read
# through, not kept, and answered -ERR.
MAX_COMMAND_LINE = 255
# A provider's status line (and a line of a listing) is at most 512 octets (RFC 2449 4);
# a little slack for providers that are generous with their text.
MAX_STATUS_LINE = 4096
CRLF = b"\r\n"
TERMINATOR = b".\r\n"
END_OF_MULTILINE = b"\r\n.\r\n"


class TooLong:
    """A line over the limit was read through and dropped."""


TOO_LONG = TooLong()


class LineReader:
    """Splits received bytes into lines (CRLF; a bare LF is accepted too), keeping at most
    ``limit`` bytes of a line: a longer line is skipped to its end and reported once as
    ``TOO_LONG``, so a client can never make the buffer grow past the limit plus one read."""

    def __init__(self, limit: int = MAX_COMMAND_LINE) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> None:
        """Bytes received."""
        self._buffer += data

    def clear(self) -> None:
        """Forget what is buffered (after STLS: nothing sent in plaintext may count later)."""
        self._buffer.clear()
        self._skipping = False

    def take(self) -> bytes:
        """Everything buffered, taken out (what follows a status line is not lines)."""
        data = bytes(self._buffer)
        self.clear()
        return data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as lines."""
        return len(self._buffer)

    def next_line(self) -> bytes | TooLong | None:
        """The next complete line without its line end, ``TOO_LONG``, or None (need more)."""
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > self.limit:
                    self._buffer.clear()
                    self._skipping = True
                return None
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            if self._skipping:
                self._skipping = False
                return TOO_LONG
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) + 2 > self.limit:
                return TOO_LONG
            return line


@dataclass(frozen=True)
class Command:
    """One command line: the keyword in upper case and its arguments."""

    keyword: str
    args: tuple[str, ...]


def parse_command(line: bytes) -> Command:
    """'retr 3' -> Command('RETR', ('3',)). Arguments keep their case; bytes that are not
    UTF-8 survive as lone surrogates (a password may be in any charset)."""
    text = line.decode("utf-8", "surrogateescape")
    keyword, _, rest = text.strip(" ").partition(" ")
    # PASS takes the rest of the line as it is: a password may hold spaces (RFC 1939 7).
    if keyword.upper() == "PASS":
        return Command("PASS", (rest,) if rest else ())
    return Command(keyword.upper(), tuple(rest.split()))


def stuffed(raw: bytes) -> bytes:
    """A message as the body of a multi-line response: each line that starts with '.' gets
    one more, the last line is ended, and the terminating '.' line follows."""
    body = raw.replace(b"\n.", b"\n..")
    if body.startswith(b"."):
        body = b"." + body
    if body and not body.endswith(b"\n"):
        body += CRLF
    return body + TERMINATOR


def unstuffed(body: bytes) -> bytes:
    """The message from a multi-line response's body (without its status line and without
    the terminating '.' line): the inverse of ``stuffed`` for a message ending in CRLF."""
    raw = body.replace(b"\n..", b"\n.")
    if raw.startswith(b".."):
        raw = raw[1:]
    return raw


def first_lines(raw: bytes, count: int) -> bytes:
    """TOP: the header, the blank line, and the first ``count`` lines of the body."""
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return raw
    start = head_end + 4
    position = start
    for _ in range(count):
        found = raw.find(b"\n", position)
        if found < 0:
            return raw
        position = found + 1
    return raw[:position]


class MultilineReader:
    """Collects one multi-line response after its +OK status line: the body up to the
    terminating '.' line, kept while it is at most ``limit`` bytes (a longer one is read
    through, so the connection stays in step, and reported as over the limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # Begins with the status line's CRLF so that an empty body ("\r\n.\r\n") is found.
        self._buffer = bytearray(CRLF)
        self.over_limit = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Bytes received; returns what follows the response (the next response's bytes)."""
        # Only the new bytes and the four before them can hold a terminator not yet seen.
        start = max(0, len(self._buffer) - len(END_OF_MULTILINE) + 1)
        self._buffer += data
        end = self._buffer.find(END_OF_MULTILINE, start)
        if end >= 0:
            self.done = True
            rest = bytes(self._buffer[end + len(END_OF_MULTILINE):])
            del self._buffer[end + 2:]
            return rest
        if len(self._buffer) > self.limit + len(END_OF_MULTILINE):
            # Read through: keep only what may be the start of the terminator, behind two
            # bytes that cannot be part of one.
            self.over_limit = True
            self._buffer = bytearray(b"\0\0") + self._buffer[-(len(END_OF_MULTILINE) - 1):]
        return b""

    def body(self) -> bytes:
        """The body as sent (still stuffed), with its last CRLF; valid once ``done``."""
        return bytes(self._buffer[2:])
