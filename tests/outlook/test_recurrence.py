"""Recurring appointments and attendees' responses in the archived iCalendar: the rule readpst
finds on the corpus's recurring appointment, deleted and changed occurrences, patterns built
from [MS-OXOCAL] 2.2.1.44 by hand, and a damaged pattern that costs only the rule."""

from __future__ import annotations

import email
import email.policy
import struct
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailvault.outlook.forms import build_form
from mailvault.outlook.item import Item
from mailvault.outlook.properties import PT_LONG, PT_UNICODE, PropertyBag
from mailvault.outlook.recurrence import read_recurrence
from mailvault.outlook.source import OutlookTally, pst_items
from mailvault.outlook.tags import (
    PR_DISPLAY_NAME,
    PR_MESSAGE_CLASS,
    PR_RECIPIENT_TRACKSTATUS,
    PR_SMTP_ADDRESS,
    PR_SUBJECT,
)
from mailvault.records import Incoming

EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


def _calendars(path: Path) -> list[str]:
    found = []
    for item in pst_items(path, None, OutlookTally(), lambda _size: None):
        assert isinstance(item, Incoming)
        message = email.message_from_bytes(item.raw, policy=email.policy.default)
        found += [p.get_content() for p in message.walk()
                  if p.get_content_type() == "text/calendar"]
    return found


def test_the_rule_is_readpsts_and_changed_occurrences_are_events(pst_dir: Path,
                                                                  tmp_path: Path) -> None:
    path = pst_dir / "java-libpst_dist-list.pst"
    subprocess.run(["readpst", "-q", "-t", "a", "-o", str(tmp_path), str(path)], check=True,
                   capture_output=True, timeout=120)
    theirs = [line for p in tmp_path.iterdir() for line in p.read_text().splitlines()
              if line.startswith("RRULE:")]
    [calendar] = _calendars(path)
    lines = calendar.replace("\r\n", "\n").splitlines()
    assert theirs == ["RRULE:FREQ=WEEKLY;BYDAY=TU"]
    assert [x for x in lines if x.startswith("RRULE:")] == theirs
    # Of the three occurrences deleted from the series, two were moved (they are changed
    # occurrences, not gone): one EXDATE, two events with a RECURRENCE-ID.
    assert [x for x in lines if x.startswith("EXDATE")] == ["EXDATE:20160809T150000Z"]
    assert [x for x in lines if x.startswith(("RECURRENCE-ID", "DTSTART"))] == [
        "DTSTART:20160802T150000Z",
        "RECURRENCE-ID:20160823T150000Z", "DTSTART:20160823T160000Z",
        "RECURRENCE-ID:20160830T150000Z", "DTSTART:20160830T170000Z"]
    assert calendar.count("BEGIN:VEVENT") == 3 and len({x for x in lines if "UID" in x}) == 1


def _minutes(when: datetime) -> int:
    return int((when - EPOCH).total_seconds() // 60)


def _pattern(frequency: int, kind: int, period: int, specific: bytes, end: int, count: int,
             start: datetime, end_date: datetime, deleted: tuple[datetime, ...] = (),
             changed: tuple[tuple[datetime, datetime, bytes], ...] = ()) -> bytes:
    """A PidLidAppointmentRecur value as [MS-OXOCAL] 2.2.1.44.1 and .44.5 lay it out; times
    are local (here: UTC+2), a 60-minute appointment starting at 10:00."""
    midnight = start.replace(hour=0, minute=0)
    local_deleted = [_minutes(d.replace(hour=0, minute=0)) for d in deleted]
    local_changed = [_minutes(o.replace(hour=0, minute=0)) for o, _, _ in changed]
    out = struct.pack("<HHHHHIII", 0x3004, 0x3004, frequency, kind, 0, 0, period, 0) + specific
    out += struct.pack("<III", end, count, 1)
    # Moved occurrences are both deleted and modified instances.
    out += struct.pack("<I", len(local_deleted + local_changed)) + b"".join(
        struct.pack("<I", d) for d in sorted(local_deleted + local_changed))
    out += struct.pack("<I", len(local_changed)) + b"".join(
        struct.pack("<I", d) for d in local_changed)
    out += struct.pack("<IIIIII", _minutes(midnight), _minutes(end_date), 0x3006, 0x3009,
                       600, 660)
    out += struct.pack("<H", len(changed))
    for original, new, subject in changed:
        out += struct.pack("<IIIH", _minutes(new), _minutes(new) + 60, _minutes(original),
                           0x0011)
        out += struct.pack("<HH", len(subject) + 1, len(subject)) + subject
        out += struct.pack("<HH", 7, 6) + b"Room 9"
    return out + bytes(8)


LOCAL_START = datetime(2024, 1, 9, 10, 0, tzinfo=UTC)  # a Tuesday, 10:00 local
UTC_START = LOCAL_START - timedelta(hours=2)


@pytest.mark.parametrize(("blob", "rule"), [
    (_pattern(0x200A, 0, 3 * 1440, b"", 0x2022, 10, LOCAL_START, LOCAL_START),
     "FREQ=DAILY;INTERVAL=3;COUNT=10"),
    (_pattern(0x200B, 1, 2, struct.pack("<I", 0b0010100), 0x2021, 0, LOCAL_START,
              datetime(2024, 6, 25, tzinfo=UTC)),
     "FREQ=WEEKLY;INTERVAL=2;UNTIL=20240625T080000Z;BYDAY=TU,TH"),
    (_pattern(0x200C, 3, 1, struct.pack("<II", 0b0000100, 5), 0x2023, 0, LOCAL_START,
              LOCAL_START), "FREQ=MONTHLY;BYDAY=TU;BYSETPOS=-1"),
    (_pattern(0x200D, 2, 12, struct.pack("<I", 9), 0x2022, 5, LOCAL_START, LOCAL_START),
     "FREQ=YEARLY;COUNT=5;BYMONTH=1;BYMONTHDAY=9"),
    (_pattern(0x200C, 4, 1, struct.pack("<I", 31), 0x2023, 0, LOCAL_START, LOCAL_START),
     "FREQ=MONTHLY;BYMONTHDAY=-1"),
])
def test_patterns_become_rules(blob: bytes, rule: str) -> None:
    assert read_recurrence(blob, UTC_START, "cp1252").rule == rule


def test_deleted_and_changed_occurrences_are_in_utc() -> None:
    gone, moved = LOCAL_START + timedelta(days=7), LOCAL_START + timedelta(days=14)
    blob = _pattern(0x200B, 1, 1, struct.pack("<I", 0b0000100), 0x2023, 0, LOCAL_START,
                    LOCAL_START, deleted=(gone,),
                    changed=((moved, moved + timedelta(hours=3), b"Caf\xe9 review"),))
    series = read_recurrence(blob, UTC_START, "cp1252")
    assert series.deleted == [gone - timedelta(hours=2)]
    [changed] = series.changed
    assert (changed.original, changed.start, changed.end) == (
        moved - timedelta(hours=2), moved + timedelta(hours=1),
        moved + timedelta(hours=2))
    assert (changed.subject, changed.location) == ("Café review", "Room 9")


def test_a_damaged_pattern_is_an_error_the_form_survives() -> None:
    blob = _pattern(0x200B, 1, 1, struct.pack("<I", 4), 0x2023, 0, LOCAL_START, LOCAL_START)
    with pytest.raises(struct.error):
        read_recurrence(blob[:30], UTC_START, "cp1252")
    with pytest.raises(ValueError, match="frequency"):
        read_recurrence(struct.pack("<HHH", 0x3004, 0x3004, 0x9999) + blob[6:], UTC_START,
                        "cp1252")


def _text(value: str) -> bytes:
    return value.encode("utf-16-le")


def test_attendees_carry_their_responses() -> None:
    props = PropertyBag()
    props.put(PR_MESSAGE_CLASS, PT_UNICODE, _text("IPM.Appointment"))
    props.put(PR_SUBJECT, PT_UNICODE, _text("Planning"))
    item = Item(props)
    for name, status in (("ann", 3), ("bob", 4), ("cy", 2), ("di", 5), ("ed", None)):
        row = PropertyBag()
        row.put(PR_DISPLAY_NAME, PT_UNICODE, _text(name))
        row.put(PR_SMTP_ADDRESS, PT_UNICODE, _text(f"{name}@example.com"))
        if status is not None:
            row.put(PR_RECIPIENT_TRACKSTATUS, PT_LONG, struct.pack("<i", status))
        item.recipients.append(row)
    message = email.message_from_bytes(build_form(item), policy=email.policy.default)
    [calendar] = [p.get_content() for p in message.walk()
                  if p.get_content_type() == "text/calendar"]
    found = {line.split("mailto:")[1]: line.split("PARTSTAT=")[1].split(":")[0]
             for line in calendar.replace("\r\n", "\n").replace("\n ", "").splitlines()
             if line.startswith("ATTENDEE")}
    assert found == {"ann@example.com": "ACCEPTED", "bob@example.com": "DECLINED",
                     "cy@example.com": "TENTATIVE", "di@example.com": "NEEDS-ACTION",
                     "ed@example.com": "NEEDS-ACTION"}
