"""Outlook items that are not mail, in the standard forms other programs read.

An appointment or meeting becomes iCalendar (VEVENT), a task iCalendar (VTODO), a contact or
distribution list a vCard 3.0; each travels as a message whose headers come from the item
(subject, dates, organizer) with its text body and the iCalendar/vCard as an attachment, so it
is archived, searchable and opens in a calendar or address book. Notes and journal entries are
text and become plain messages. A recurring appointment carries its rule, its deleted
occurrences and its changed ones (recurrence.py); attendees carry their responses.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from datetime import datetime

from mailvault.outlook.headers import CRLF, header_lines, message_date, subject
from mailvault.outlook.item import (
    APPOINTMENT,
    CONTACT,
    DISTRIBUTION_LIST,
    TASK,
    Item,
)
from mailvault.outlook.mime import Part, body_forms, encoded_text_part, multipart, text_part
from mailvault.outlook.properties import PropertyBag
from mailvault.outlook.recurrence import Recurrence, read_recurrence
from mailvault.outlook.tags import (
    LID_APPOINTMENT_END,
    LID_APPOINTMENT_RECUR,
    LID_APPOINTMENT_START,
    LID_EMAIL1_ADDRESS,
    LID_EMAIL2_ADDRESS,
    LID_EMAIL3_ADDRESS,
    LID_LOCATION,
    LID_TASK_DUE,
    PR_BODY,
    PR_BUSINESS_PHONE,
    PR_COMPANY_NAME,
    PR_CREATION_TIME,
    PR_DISPLAY_NAME,
    PR_EMAIL_ADDRESS,
    PR_GIVEN_NAME,
    PR_HOME_PHONE,
    PR_INTERNET_MESSAGE_ID,
    PR_MOBILE_PHONE,
    PR_RECIPIENT_TRACKSTATUS,
    PR_RECIPIENT_TYPE,
    PR_SEARCH_KEY,
    PR_SENT_REPRESENTING_EMAIL,
    PR_SENT_REPRESENTING_NAME,
    PR_SMTP_ADDRESS,
    PR_SURNAME,
    PR_TITLE,
    PSETID_ADDRESS,
    PSETID_APPOINTMENT,
    PSETID_TASK,
)

CONVERTED_KINDS = (APPOINTMENT, CONTACT, DISTRIBUTION_LIST, TASK, "note", "journal")
_PRODID = "-//mailvault//Outlook import//EN"
_ROLES = {1: "REQ-PARTICIPANT", 2: "OPT-PARTICIPANT", 3: "NON-PARTICIPANT"}
# PidTagRecipientTrackStatus: none, organized, tentative, accepted, declined, not responded.
_RESPONSES = {0: "NEEDS-ACTION", 1: "ACCEPTED", 2: "TENTATIVE", 3: "ACCEPTED", 4: "DECLINED",
              5: "NEEDS-ACTION"}


def build_form(item: Item) -> bytes:
    """The message that carries a non-mail item (headers, text body, iCalendar or vCard)."""
    forms = body_forms(item)
    main = forms[0] if len(forms) == 1 else (multipart("alternative", forms) if forms
                                             else text_part("", "plain"))
    name = subject(item.props) or item.kind
    standard: Part | None = None
    if item.kind in (APPOINTMENT, TASK):
        standard = _attached("calendar", _icalendar(item), f"{name}.ics", "method=PUBLISH")
    elif item.kind in (CONTACT, DISTRIBUTION_LIST):
        standard = _attached("vcard", _vcard(item), f"{name}.vcf", None)
    body = main if standard is None else multipart("mixed", [main, standard])
    lines = header_lines(item)
    top = Part([*lines, "MIME-Version: 1.0", *body.headers], body.body)
    return top.render()


def _attached(subtype: str, text: str, filename: str, extra: str | None) -> Part:
    part = encoded_text_part(text.encode("utf-8"), subtype, "utf-8")
    content_type = part.headers[0] + (f"; {extra}" if extra else "")
    safe = "".join(c if c.isascii() and c not in '"\\' else "_" for c in filename)
    return Part([content_type, *part.headers[1:],
                 f'Content-Disposition: attachment; filename="{safe}"'], part.body)


# -- iCalendar (RFC 5545) ----------------------------------------------------------------------

def _icalendar(item: Item) -> str:
    props = item.props
    component = "VEVENT" if item.kind == APPOINTMENT else "VTODO"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{_PRODID}", "METHOD:PUBLISH",
             f"BEGIN:{component}"]
    stamp = props.time(PR_CREATION_TIME) or message_date(props)
    # What every VEVENT of the item repeats: its UID, and when it was made.
    identity = [f"UID:{_uid(props)}", *([f"DTSTAMP:{_utc(stamp)}"] if stamp else [])]
    lines += identity
    series: Recurrence | None = None
    if component == "VEVENT":
        for name, lid in (("DTSTART", LID_APPOINTMENT_START), ("DTEND", LID_APPOINTMENT_END)):
            value = props.named_time(PSETID_APPOINTMENT, lid)
            if value is not None:
                lines.append(f"{name}:{_utc(value)}")
        series = _series(props)
        if series is not None:
            lines.append(f"RRULE:{series.rule}")
            lines += [f"EXDATE:{_utc(day)}" for day in series.deleted]
        location = props.named_text(PSETID_APPOINTMENT, LID_LOCATION)
        if location:
            lines.append("LOCATION:" + _escape(location))
    else:
        due = props.named_time(PSETID_TASK, LID_TASK_DUE)
        if due is not None:
            lines.append(f"DUE:{_utc(due)}")
    lines.append("SUMMARY:" + _escape(subject(props)))
    description = props.text(PR_BODY)
    if description:
        lines.append("DESCRIPTION:" + _escape(description.strip()))
    organizer_address = props.text(PR_SENT_REPRESENTING_EMAIL)
    organizer = props.text(PR_SENT_REPRESENTING_NAME)
    if organizer_address and "@" in organizer_address:
        lines.append(f"ORGANIZER;CN={_param(organizer or organizer_address)}:mailto:"
                     f"{organizer_address}")
    for recipient in item.recipients:
        address = _address(recipient)
        if address:
            role = _ROLES.get(recipient.integer(PR_RECIPIENT_TYPE) or 1, "REQ-PARTICIPANT")
            cn = recipient.text(PR_DISPLAY_NAME) or address
            response = _RESPONSES.get(recipient.integer(PR_RECIPIENT_TRACKSTATUS) or 0,
                                      "NEEDS-ACTION")
            lines.append(f"ATTENDEE;CN={_param(cn)};ROLE={role};PARTSTAT={response}:"
                         f"mailto:{address}")
    lines.append(f"END:{component}")
    if series is not None:
        lines += _occurrences(series, identity, props)
    lines.append("END:VCALENDAR")
    return _fold(lines)


def _series(props: PropertyBag) -> Recurrence | None:
    """The appointment's recurrence, or None (none, or a pattern too damaged to read: the
    first occurrence is still archived)."""
    prop_id = props.named_id(PSETID_APPOINTMENT, LID_APPOINTMENT_RECUR)
    blob = props.binary(prop_id) if prop_id is not None else None
    if not blob:
        return None
    try:
        return read_recurrence(blob, props.named_time(PSETID_APPOINTMENT, LID_APPOINTMENT_START),
                               props.codepage or "cp1252")
    except (ValueError, struct.error, OverflowError, LookupError):
        return None


def _occurrences(series: Recurrence, identity: list[str], props: PropertyBag) -> list[str]:
    """A VEVENT for each changed occurrence of a series (RFC 5545 3.8.4.4)."""
    location = props.named_text(PSETID_APPOINTMENT, LID_LOCATION)
    lines = []
    for changed in series.changed:
        lines += ["BEGIN:VEVENT", *identity, f"RECURRENCE-ID:{_utc(changed.original)}",
                  f"DTSTART:{_utc(changed.start)}", f"DTEND:{_utc(changed.end)}",
                  "SUMMARY:" + _escape(changed.subject if changed.subject is not None
                                       else subject(props))]
        where = changed.location if changed.location is not None else location
        if where:
            lines.append("LOCATION:" + _escape(where))
        lines.append("END:VEVENT")
    return lines


def _uid(props: PropertyBag) -> str:
    """The item's own id where it has one, else a digest of what it is (stable)."""
    message_id = props.text(PR_INTERNET_MESSAGE_ID)
    if message_id:
        return _escape(message_id.strip("<>"))
    key = props.binary(PR_SEARCH_KEY) or subject(props).encode("utf-8")
    when = message_date(props)
    digest = hashlib.sha256(key + (when.isoformat().encode() if when else b"")).hexdigest()
    return f"{digest[:32]}@outlook.mailvault"


def _utc(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def _escape(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def _param(text: str) -> str:
    cleaned = text.replace('"', "'")
    return f'"{cleaned}"' if any(c in cleaned for c in ":;,") else cleaned


def _fold(lines: Iterable[str]) -> str:
    """Content lines folded at 75 octets (RFC 5545 3.1 / RFC 2425), CRLF-terminated."""
    out = []
    for line in lines:
        data = line.encode("utf-8")
        while len(data) > 75:
            cut = 75
            while cut > 0 and (data[cut] & 0xC0) == 0x80:
                cut -= 1  # never split a UTF-8 character
            out.append(data[:cut].decode("utf-8"))
            data = b" " + data[cut:]
        out.append(data.decode("utf-8"))
    return CRLF.join(out) + CRLF


# -- vCard 3.0 (RFC 2426) ----------------------------------------------------------------------

def _vcard(item: Item) -> str:
    props = item.props
    name = props.text(PR_DISPLAY_NAME) or subject(props)
    lines = ["BEGIN:VCARD", "VERSION:3.0", "FN:" + _escape(name)]
    if item.kind == DISTRIBUTION_LIST:
        lines.append("X-ADDRESSBOOKSERVER-KIND:group")
    else:
        surname, given = props.text(PR_SURNAME) or "", props.text(PR_GIVEN_NAME) or ""
        lines.append(f"N:{_escape(surname)};{_escape(given)};;;")
    for tag, field in ((PR_COMPANY_NAME, "ORG"), (PR_TITLE, "TITLE")):
        value = props.text(tag)
        if value:
            lines.append(f"{field}:{_escape(value)}")
    for lid in (LID_EMAIL1_ADDRESS, LID_EMAIL2_ADDRESS, LID_EMAIL3_ADDRESS):
        address = props.named_text(PSETID_ADDRESS, lid)
        if address and "@" in address:
            lines.append(f"EMAIL;TYPE=INTERNET:{address}")
    for tag, kind in ((PR_BUSINESS_PHONE, "WORK"), (PR_HOME_PHONE, "HOME"),
                      (PR_MOBILE_PHONE, "CELL")):
        value = props.text(tag)
        if value:
            lines.append(f"TEL;TYPE={kind}:{_escape(value)}")
    note = props.text(PR_BODY)
    if note and note.strip():
        lines.append("NOTE:" + _escape(note.strip()))
    lines.append("END:VCARD")
    return _fold(lines)


def _address(recipient: PropertyBag) -> str | None:
    for tag in (PR_SMTP_ADDRESS, PR_EMAIL_ADDRESS):
        value = recipient.text(tag)
        if value and "@" in value:
            return value.strip()
    return None
