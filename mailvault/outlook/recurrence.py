"""A recurring appointment's pattern ([MS-OXOCAL] 2.2.1.44, PidLidAppointmentRecur) as
iCalendar: the rule (RRULE), the deleted occurrences (EXDATE) and the changed ones, each with
its new times, subject and location (a VEVENT with a RECURRENCE-ID).

Outlook stores the pattern in the appointment's local time (minutes since 1601) and names no
time zone here; the item's UTC start is the series' first occurrence, so their difference is
the offset used for every occurrence (a series that crosses a daylight-saving change is an hour
off on the other side of it).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_FREQUENCIES = {0x200A: "DAILY", 0x200B: "WEEKLY", 0x200C: "MONTHLY", 0x200D: "YEARLY"}
_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")  # bit 0 is Sunday
_WEEK, _MONTH, _MONTH_NTH, _MONTH_END = 1, 2, 3, 4
_HIJRI = 0x8  # the Hijri pattern types (0xA-0xC) are the Gregorian ones plus 8
_END_BY_DATE, _END_AFTER_COUNT = 0x2021, 0x2022
# ExceptionInfo's OverrideFlags: which fields follow, and the size of those not kept.
_SUBJECT, _LOCATION = 0x0001, 0x0010
_FOUR_BYTE_FIELDS = (0x0002, 0x0004, 0x0008)  # meeting type, reminder delta, reminder set
_LATER_FOUR_BYTE_FIELDS = (0x0020, 0x0040, 0x0080, 0x0100)  # busy, attachment, subtype, color


@dataclass(frozen=True)
class Changed:
    """One occurrence moved or edited: where it was, where it is, what it now says (None:
    as the series)."""

    original: datetime
    start: datetime
    end: datetime
    subject: str | None
    location: str | None


@dataclass(frozen=True)
class Recurrence:
    """A series in iCalendar terms."""

    rule: str
    deleted: list[datetime] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> int:
        value: int = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def skip(self, size: int) -> None:
        self.bytes(size)

    def bytes(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ValueError("the recurrence pattern is truncated")
        value = self.data[self.at:self.at + size]
        self.at += size
        return value


def _minutes(value: int) -> datetime:
    return _EPOCH + timedelta(minutes=value)


def read_recurrence(blob: bytes, first_start: datetime | None, codec: str) -> Recurrence:
    """The series a PidLidAppointmentRecur value describes; ``first_start`` is the item's UTC
    start, ``codec`` the code page of changed occurrences' 8-bit subjects. Raises ValueError
    (or struct.error) when the value is damaged or of an unknown kind."""
    read = _Reader(blob)
    read.take("<H")  # ReaderVersion
    read.take("<H")  # WriterVersion
    frequency = _FREQUENCIES.get(read.take("<H"))
    pattern = read.take("<H")
    read.take("<H")  # CalendarType
    read.take("<I")  # FirstDateTime
    period = read.take("<I")
    read.take("<I")  # SlidingFlag
    if frequency is None:
        raise ValueError("the recurrence frequency is unknown")
    if pattern > _HIJRI:
        pattern -= _HIJRI
    days = month_day = nth = 0
    if pattern == _WEEK:
        days = read.take("<I")
    elif pattern in (_MONTH, _MONTH_END):
        month_day = read.take("<I")
    elif pattern == _MONTH_NTH:
        days, nth = read.take("<I"), read.take("<I")
    end_type = read.take("<I")
    count = read.take("<I")
    read.take("<I")  # FirstDOW
    deleted = [read.take("<I") for _ in range(read.take("<I"))]
    modified = {read.take("<I") for _ in range(read.take("<I"))}
    start_date, end_date = read.take("<I"), read.take("<I")
    read.take("<I")  # ReaderVersion2
    read.take("<I")  # WriterVersion2
    start_offset = read.take("<I")
    read.take("<I")  # EndTimeOffset
    local_first = _minutes(start_date + start_offset)
    shift = (local_first - first_start) if first_start is not None else timedelta(0)

    def utc(minutes: int) -> datetime:
        return _minutes(minutes) - shift

    parts = [f"FREQ={frequency}"]
    interval = period // 1440 if pattern == 0 else (
        period // 12 if frequency == "YEARLY" else period)
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    if end_type == _END_AFTER_COUNT:
        parts.append(f"COUNT={count}")
    elif end_type == _END_BY_DATE:
        parts.append(f"UNTIL={utc(end_date + start_offset):%Y%m%dT%H%M%SZ}")
    if frequency == "YEARLY" and pattern in (_MONTH, _MONTH_END, _MONTH_NTH):
        parts.append(f"BYMONTH={local_first.month}")
    if pattern == _MONTH:
        parts.append(f"BYMONTHDAY={month_day}")
    elif pattern == _MONTH_END:
        parts.append("BYMONTHDAY=-1")
    if days:
        parts.append("BYDAY=" + ",".join(d for bit, d in enumerate(_DAYS) if days >> bit & 1))
    if pattern == _MONTH_NTH:
        parts.append(f"BYSETPOS={-1 if nth == 5 else nth}")
    changed = _changed(read, utc, codec)
    return Recurrence(";".join(parts),
                      [utc(day + start_offset) for day in deleted if day not in modified],
                      changed)


def _changed(read: _Reader, utc: Callable[[int], datetime], codec: str) -> list[Changed]:
    """The ExceptionInfo structures: the changed occurrences (their 8-bit subject and
    location; the Unicode copies in ExtendedException that follow are not read)."""
    found = []
    for _ in range(read.take("<H")):
        start, end, original = read.take("<I"), read.take("<I"), read.take("<I")
        flags = read.take("<H")
        subject = _string8(read, codec) if flags & _SUBJECT else None
        read.skip(sum(4 for flag in _FOUR_BYTE_FIELDS if flags & flag))
        location = _string8(read, codec) if flags & _LOCATION else None
        read.skip(sum(4 for flag in _LATER_FOUR_BYTE_FIELDS if flags & flag))
        found.append(Changed(utc(original), utc(start), utc(end), subject, location))
    return found


def _string8(read: _Reader, codec: str) -> str:
    """An 8-bit string of ExceptionInfo: its length plus one, its length, its bytes."""
    read.take("<H")
    return read.bytes(read.take("<H")).decode(codec, "replace")
