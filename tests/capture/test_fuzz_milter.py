"""The milter protocol against any packets an MTA (or anyone who reaches the port) may send:
known commands with any data, unknown commands, lengths that lie, a stream cut anywhere.
The conversation ends cleanly (answered, or hung up on), never with an exception, and every
message that reaches end-of-body is handed over once, with the envelope as a Provenance."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailvault.capture import milter
from mailvault.capture.milter import MilterConnection, packet
from tests.fuzz.profile import fuzz

COMMANDS = [milter.ABORT, milter.BODY, milter.CONNECT, milter.MACRO, milter.END_OF_BODY,
            milter.HELO, milter.QUIT_NEW_CONNECTION, milter.HEADER, milter.MAIL,
            milter.END_OF_HEADERS, milter.NEGOTIATE, milter.RCPT, milter.DATA, milter.UNKNOWN]
DATA = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"\0", b"\0\0\0", b"{i}\0ABC\0", b"Cj\0x\0",
                     b"host\x004\x00\x19127.0.0.1\0", b"host\x006\0", b"host\x00", b"<a@b>\0",
                     b"Subject\0 x\0", b"Subject", struct.pack(">III", 6, 0, 0x1FFFFF),
                     struct.pack(">II", 6, 0), b"\xff" * 12]))
PACKETS = st.one_of(
    st.tuples(st.sampled_from(COMMANDS), DATA).map(lambda cd: packet(*cd)),
    st.binary(max_size=12),  # anything at all, a lying length among it
)


@dataclass
class Endpoint:
    """The endpoint's side of a conversation: what was delivered, nothing stored."""

    max_bytes: int = 4096
    source: str = "milter test"
    delivered: list[tuple[bytes, object]] = field(default_factory=list)

    async def deliver(self, connection: MilterConnection) -> bytes:
        self.delivered.append((connection.message.raw(), connection.provenance()))
        return packet(milter.CONTINUE)


@dataclass
class Writer:
    sent: bytearray = field(default_factory=bytearray)
    closed: bool = False

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def _run(stream: bytes) -> tuple[Endpoint, Writer]:
    async def conversation() -> tuple[Endpoint, Writer]:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        endpoint, writer = Endpoint(), Writer()
        await MilterConnection(endpoint, reader, writer).run()  # type: ignore[arg-type]
        return endpoint, writer

    return asyncio.run(conversation())


@fuzz(150)
@given(packets=st.lists(PACKETS, max_size=30))
def test_any_packets_end_the_conversation_cleanly(packets: list[bytes]) -> None:
    stream = b"".join(packets)
    endpoint, writer = _run(stream)
    assert writer.closed
    ends = sum(1 for p in packets if p[4:5] == milter.END_OF_BODY)
    assert len(endpoint.delivered) <= ends


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("milter-*.bin")), ids=lambda p: p.name)
def test_a_milter_crasher_is_hung_up_on(path: Path) -> None:
    """Crasher found: a negotiation shorter than its 12 bytes (struct.error before)."""
    endpoint, writer = _run(path.read_bytes())
    assert writer.closed and writer.sent == b"" and endpoint.delivered == []
