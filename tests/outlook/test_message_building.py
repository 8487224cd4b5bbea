"""The messages built from Outlook items: the same bytes every time, valid MIME that the
standard library reads without defects, and text decoded from the right code page."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import compressed_rtf
import pytest

from mailvault.message import parse
from mailvault.outlook.item import Attachment, Item
from mailvault.outlook.mime import build_message
from mailvault.outlook.msg import read_msg
from mailvault.outlook.properties import PT_BINARY, PT_UNICODE, PropertyBag
from mailvault.outlook.pst import Folder, PstReader
from mailvault.outlook.rtf import decompress, deencapsulate
from mailvault.outlook.source import OutlookTally, convert, pst_items
from mailvault.outlook.tags import (
    PR_ATTACH_DATA,
    PR_ATTACH_MIME_TAG,
    PR_BODY,
    PR_MESSAGE_CLASS,
    PR_RTF_COMPRESSED,
    PR_SUBJECT,
    PR_TRANSPORT_HEADERS,
)
from mailvault.records import Incoming


def _all_pst_messages(pst_dir: Path) -> list[bytes]:
    raws = []
    for pst in sorted(pst_dir.glob("*.pst")):
        for item in pst_items(pst, None, OutlookTally(), lambda _size: None):
            assert isinstance(item, Incoming)
            raws.append(item.raw)
    return raws


def test_building_is_deterministic(pst_dir: Path, msg_dir: Path) -> None:
    assert _all_pst_messages(pst_dir) == _all_pst_messages(pst_dir)
    for path in sorted(msg_dir.glob("*.msg")):
        assert convert(read_msg(path)) == convert(read_msg(path)), path.name


def test_every_message_is_clean_mime(pst_dir: Path, msg_dir: Path) -> None:
    raws = _all_pst_messages(pst_dir)
    raws += [raw for p in sorted(msg_dir.glob("*.msg")) if (raw := convert(read_msg(p)))]
    assert len(raws) == 154 + 44
    for raw in raws:
        assert raw.isascii() or b"Content-Transfer-Encoding: 8bit" in raw
        message = email.message_from_bytes(raw, policy=email.policy.default)
        problems = [d for part in message.walk() for d in part.defects]
        assert not problems, (message["subject"], problems)
        assert not parse(raw).defects, message["subject"]


@pytest.mark.parametrize(("name", "subject", "body"), [
    ("nonUnicodeCP932.msg", "日本語 Non Unicode タイトル", "日本語"),
    ("Hello +CJK.msg", "Hello +CJK", "你好"),
    ("voteYes.msg", "はい: 3 vote items: はい;いいえ;たぶん", ""),
])
def test_legacy_code_pages_are_decoded(msg_dir: Path, name: str, subject: str,
                                       body: str) -> None:
    raw = convert(read_msg(msg_dir / name))
    assert raw is not None
    parsed = parse(raw)
    assert parsed.subject == subject
    assert body in parsed.body


def test_an_item_without_transport_headers_gets_headers_from_its_properties(
        msg_dir: Path) -> None:
    raw = convert(read_msg(msg_dir / "200 recipients.msg"))
    assert raw is not None
    message = email.message_from_bytes(raw, policy=email.policy.default)
    recipients = [a for name in ("to", "cc", "bcc") for h in message.get_all(name, [])
                  for a in h.addresses]
    assert len(recipients) == 200
    assert message["subject"] == "200 recipients"
    assert message["date"] is not None


def test_an_appointment_carries_icalendar(msg_dir: Path) -> None:
    raw = convert(read_msg(msg_dir / "Appointment sample EST.msg"))
    assert raw is not None
    message = email.message_from_bytes(raw, policy=email.policy.default)
    [calendar] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    text = calendar.get_content()
    assert "BEGIN:VEVENT" in text and "SUMMARY:Appointment sample EST" in text
    assert "DTSTART:" in text and "DTEND:" in text


# -- RTF de-encapsulation ([MS-OXRTFEX]) -------------------------------------------------------

SPEC_EXAMPLE = (
    rb"{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl {\f0\fswiss\fcharset0 Arial;}"
    rb"{\f1\fmodern Courier New;}{\f2\fnil\fcharset2 Symbol;}}"
    rb"{\colortbl\red0\green0\blue0;\red0\green0\blue255;}"
    rb"{\*\htmltag64}\uc1\pard\plain\deftab360 \f0\fs24 "
    rb"{\*\htmltag <HTML><head>}{\*\htmltag <style>}{\*\htmltag <!--}"
    rb"{\*\htmltag \par p \{font-family: Arial;\}\par}{\*\htmltag -->}{\*\htmltag </style>}"
    rb"{\*\htmltag </head><body>}\htmlrtf {\htmlrtf0 Hello{\*\htmltag <br>}\htmlrtf \line"
    rb"\htmlrtf0 caf\'e9 \u8364?\htmlrtf }\htmlrtf0 {\*\htmltag </body></HTML>}}")


def test_html_is_recovered_from_rtf() -> None:
    html = deencapsulate(SPEC_EXAMPLE, html=True)
    assert html.startswith("<HTML><head><style><!--")
    assert "p {font-family: Arial;}" in html
    assert "Hello<br>café €</body></HTML>" in html


def test_text_in_a_font_with_its_own_charset_is_decoded_in_it() -> None:
    rtf = (rb"{\rtf1\ansi\ansicpg1252\fromhtml1{\fonttbl{\f0\fswiss\fcharset0 Arial;}"
           rb"{\f5\fnil\fcharset134 SimSun;}}{\*\htmltag <p>}\htmlrtf0 {\f5 \'c4\'e3\'ba\'c3}"
           rb"{\*\htmltag </p>}}")
    assert deencapsulate(rtf, html=True) == "<p>你好</p>"


def test_compressed_rtf_decodes_as_the_reference_library_does(pst_dir: Path,
                                                              msg_dir: Path) -> None:
    # mailvault has its own LZFu decoder (the library is pure Python and 3-4 times slower);
    # every RTF body of the corpus must come out byte for byte the same.
    bodies = [body for p in sorted(msg_dir.glob("*.msg"))
              if (body := read_msg(p).props.binary(PR_RTF_COMPRESSED))]
    with PstReader(pst_dir / "aspose-net_Outlook_Chunks_Test_part1.pst") as reader:
        for folder in reader.folders():
            assert isinstance(folder, Folder)
            bodies += [body for nid in reader.item_ids(folder)
                       if (body := reader.item(nid).props.binary(PR_RTF_COMPRESSED))]
    assert len(bodies) >= 50
    for body in bodies:
        assert decompress(body) == compressed_rtf.decompress(body)


def _item(message_class: str, attachment: bytes, mime: str) -> Item:
    props = PropertyBag()
    props.put(PR_MESSAGE_CLASS, PT_UNICODE, message_class.encode("utf-16-le"))
    props.put(PR_SUBJECT, PT_UNICODE, "Signed".encode("utf-16-le"))
    attached = PropertyBag()
    attached.put(PR_ATTACH_DATA, PT_BINARY, attachment)
    attached.put(PR_ATTACH_MIME_TAG, PT_UNICODE, mime.encode("utf-16-le"))
    return Item(props, attachments=[Attachment(attached)])


def test_a_clear_signed_item_keeps_its_signed_entity_byte_for_byte() -> None:
    entity = (b'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; '
              b'micalg=sha-256; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n'
              b"Signed text.\r\n--b1\r\nContent-Type: application/pkcs7-signature\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\nMIIB\r\n--b1--\r\n")
    raw = build_message(_item("IPM.Note.SMIME.MultipartSigned", entity, "multipart/signed"))
    assert raw.endswith(b"MIME-Version: 1.0\r\n" + entity)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/signed"
    assert message["subject"] == "Signed"


def test_an_encrypted_item_is_an_smime_message() -> None:
    raw = build_message(_item("IPM.Note.SMIME", b"\x30\x82\x01\x00", "application/pkcs7-mime"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "application/pkcs7-mime"
    assert message.get_payload(decode=True) == b"\x30\x82\x01\x00"


def test_non_ascii_transport_headers_become_encoded_words_around_the_addresses() -> None:
    props = PropertyBag()
    props.put(PR_MESSAGE_CLASS, PT_UNICODE, "IPM.Note".encode("utf-16-le"))
    headers = ("Received: from a by b\r\nFrom: Jörg Müller <jm@example.de>\r\n"
               "To: \"Ünal\" <u@example.tr>, plain@example.com\r\nSubject: Grüße\r\n"
               "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n")
    props.put(PR_TRANSPORT_HEADERS, PT_UNICODE, headers.encode("utf-16-le"))
    props.put(PR_BODY, PT_UNICODE, "Hallo".encode("utf-16-le"))
    raw = build_message(Item(props))
    assert raw.isascii()
    parsed = parse(raw)
    assert [str(a) for a in parsed.addrs("from")] == ["Jörg Müller <jm@example.de>"]
    assert [a.address for a in parsed.addrs("to")] == ["u@example.tr", "plain@example.com"]
    assert parsed.subject == "Grüße"
    assert raw.count(b"Content-Type:") == 1  # the original's is dropped: the body is rebuilt
