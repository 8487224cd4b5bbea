"""Reach a stored gateway message's sealed bytes on disk, to alter them as an attacker or a
failing disk would."""

from __future__ import annotations

from pathlib import Path

from mailvault.gateway import segments


def flip(mailbox: Path, message_id: str, where: int, bit: int = 0x01) -> None:
    """Flip one bit of a stored message's sealed bytes (``where`` may count from the end)."""
    [record] = [r for r in segments.records(mailbox) if r.message_id == message_id]
    position = record.offset + (where if where >= 0 else record.length + where)
    with record.segment.open("r+b") as f:
        f.seek(position)
        byte = f.read(1)[0]
        f.seek(position)
        f.write(bytes([byte ^ bit]))


def sealed(mailbox: Path, message_id: str) -> bytes:
    """A stored message's sealed bytes."""
    [record] = [r for r in segments.records(mailbox) if r.message_id == message_id]
    return segments.read_payload(record)
