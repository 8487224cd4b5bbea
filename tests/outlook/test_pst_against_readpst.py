"""The PST files of the corpus read by mailvault and by Debian's readpst: the same emails,
the same facts about each (subject, sender, recipients, date, attachments, body text)."""

from __future__ import annotations

import email
import email.policy
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from mailvault.outlook.source import OutlookTally, pst_items
from mailvault.records import Incoming
from tests.outlook.conftest import EMAIL_FILES
from tests.outlook.readpst_reference import (
    Facts,
    assert_bodies_agree_on_rereading,
    mailvault_emails,
    readpst_emails,
    same_text,
)


@pytest.fixture(scope="module")
def both_sides(pst_dir: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Callable[[str], tuple[list[Facts], list[Facts]]]:
    """readpst's emails and mailvault's of a corpus PST, each read once for this module (the
    two tests below compare the same readings)."""
    read: dict[str, tuple[list[Facts], list[Facts]]] = {}

    def sides(name: str) -> tuple[list[Facts], list[Facts]]:
        if name not in read:
            reference = readpst_emails(pst_dir / name, tmp_path_factory.mktemp("readpst"))
            read[name] = (reference, mailvault_emails(pst_dir / name)[0])
        return read[name]

    return sides


@pytest.mark.parametrize("name", sorted(EMAIL_FILES))
def test_the_same_emails_and_attachments_as_readpst(
        both_sides: Callable[[str], tuple[list[Facts], list[Facts]]], name: str) -> None:
    emails, attachments = EMAIL_FILES[name]
    reference, ours = both_sides(name)
    assert len(reference) == len(ours) == emails
    assert sum(len(f.attachments) for f in reference) == attachments
    assert sum(len(f.attachments) for f in ours) == attachments
    assert Counter(f.key for f in ours) == Counter(f.key for f in reference)


@pytest.mark.parametrize("name", sorted(EMAIL_FILES))
def test_each_email_says_what_readpst_says(
        both_sides: Callable[[str], tuple[list[Facts], list[Facts]]], name: str,
        pst_dir: Path, tmp_path: Path) -> None:
    theirs_all, ours = both_sides(name)
    reference = {f.key: f for f in theirs_all}
    differing_bodies = []
    for mine in ours:
        theirs = reference[mine.key]
        assert mine.subject == theirs.subject
        assert mine.attachments == theirs.attachments, mine.subject
        if not same_text(mine.body, theirs.body):
            differing_bodies.append(mine)
        # readpst writes "MAILER-DAEMON" where the item names no sender; mailvault leaves it out.
        if theirs.sender != "mailer-daemon":
            assert mine.sender == theirs.sender, mine.subject
        # For unsent copies readpst puts display names ('a@b') in To; the table has addresses.
        assert mine.recipients == tuple(r.strip("'") for r in theirs.recipients), mine.subject
        # Where the transport headers have no Date, readpst writes none; mailvault takes the
        # submit time from the item's properties.
        if theirs.date is not None:
            assert mine.date == theirs.date, mine.subject
        else:
            assert mine.date is not None
    assert_bodies_agree_on_rereading(pst_dir / name, tmp_path, differing_bodies)


def test_the_file_libpff_stumbles_on_yields_every_item(pst_dir: Path) -> None:
    # libpff reports 12 item errors on this file (12 of its 21 contacts); readpst none.
    tally = OutlookTally()
    items = list(pst_items(pst_dir / "aspose-net_Outlook_Chunks_Test_part1.pst", None, tally,
                           lambda _size: None))
    assert all(isinstance(i, Incoming) for i in items)
    assert tally.archived == Counter({"email": 31, "contact": 21, "appointment": 9})
    assert tally.unreadable == 0


@pytest.mark.parametrize(("name", "kinds", "skipped"), [
    ("aspose-net_Outlook_PersonalStorageFile1.pst", {"contact": 72}, {}),
    ("java-libpst_dist-list.pst", {"contact": 1, "distribution list": 1, "appointment": 1},
     {"IPM.Microsoft.ScheduleData.FreeBusy": 1}),
    ("pst-extractor_contacts97-2002.pst", {"contact": 1}, {}),
    ("aspose-net_Outlook_Outlook.pst", {"email": 14, "contact": 1, "appointment": 1},
     {"IPM.Microsoft.ScheduleData.FreeBusy": 1}),
])
def test_other_items_are_converted_or_reported_by_kind(
        pst_dir: Path, name: str, kinds: dict[str, int], skipped: dict[str, int]) -> None:
    tally = OutlookTally()
    items = list(pst_items(pst_dir / name, None, tally, lambda _size: None))
    assert tally.archived == Counter(kinds)
    assert tally.skipped == Counter(skipped)
    assert len(items) == sum(kinds.values())


def test_ansi_pst_text_is_decoded_in_its_code_page(pst_dir: Path) -> None:
    # An Outlook 97-2002 file written on Japanese Windows: Shift-JIS names, no Unicode copy.
    tally = OutlookTally()
    [item] = pst_items(pst_dir / "pst-extractor_contacts97-2002.pst", None, tally,
                       lambda _size: None)
    assert isinstance(item, Incoming)
    assert item.provenance.folder == "連絡先 (Contact dedicated)"
    message = email.message_from_bytes(item.raw, policy=email.policy.default)
    assert message["subject"] == "コム ドット イグザンプル 殿"
    [card] = [p for p in message.walk() if p.get_content_type() == "text/vcard"]
    text = card.get_content().replace("\r\n ", "")
    assert "FN:Mr. イグザンプル ドット コム 殿" in text
    assert "N:イグザンプル;コム;;;" in text


def test_readpst_facts_are_read_from_real_output(pst_dir: Path, tmp_path: Path) -> None:
    # The reference itself: readpst's own mbox output parsed, not a copy of mailvault's logic.
    facts: list[Facts] = readpst_emails(pst_dir / "aspose-net_Outlook_Outlook.pst", tmp_path)
    assert {f.folder for f in facts} == {"Inbox", "Sent Items"}
    assert any(p.suffix == ".mbox" for p in tmp_path.rglob("*"))


def test_provenance_names_file_folder_item_and_state(pst_dir: Path) -> None:
    path = pst_dir / "aspose-net_Outlook_Outlook.pst"
    items = {i.provenance.item: i.provenance for i in pst_items(
        path, None, OutlookTally(), lambda _size: None) if isinstance(i, Incoming)}
    unread = items["2097700"]  # "message 1" in Inbox, never opened
    assert (unread.kind, unread.source, unread.folder) == ("pst", str(path), "Inbox")
    assert unread.flags == ()
    assert unread.internal_date is not None and unread.internal_date.year == 2011
    assert items["2097476"].flags == ("\\Seen",)
    assert dict(items["2097860"].extra) == {"message_class": "IPM.Appointment"}
    assert items["2097860"].folder == "Calendar"


def test_calendar_and_contact_say_what_readpst_says(pst_dir: Path, tmp_path: Path) -> None:
    path = pst_dir / "aspose-net_Outlook_Outlook.pst"
    subprocess.run(["readpst", "-q", "-t", "ac", "-o", str(tmp_path), str(path)], check=True,
                   capture_output=True, timeout=120)
    theirs = "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.iterdir()))
    ours = []
    for item in pst_items(path, None, OutlookTally(), lambda _size: None):
        assert isinstance(item, Incoming)
        message = email.message_from_bytes(item.raw, policy=email.policy.default)
        ours += [p.get_content() for p in message.walk()
                 if p.get_content_type() in ("text/calendar", "text/vcard")]
    mine = "\n".join(ours)
    for field in ("DTSTART", "DTEND", "LOCATION", "SUMMARY"):
        [line] = [x for x in theirs.splitlines() if x.startswith(field)]
        assert f"{field}:{line.split(':', 1)[1]}" in mine
    for value in ("saqib.razzaq@xp.local", "1110001234", "1112223333", "3334443333"):
        assert value in theirs and value in mine
