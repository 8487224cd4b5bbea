"""The mailbox store: mail at rest is unreadable without the password, the password can change
without losing mail, a damaged message is reported and never served, and the metadata tells
nothing of the content."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from mailvault.errors import (
    GatewayError,
    IntegrityError,
    MailboxPasswordError,
    MailboxUnavailable,
)
from mailvault.gateway import sealing, segments
from mailvault.gateway.mailboxes import SUSPENDED, GatewayMailboxes
from tests.gateway.file_events import FileEvents, watching
from tests.gateway.stored_bytes import flip, sealed
from tests.support import build_message

SECRET_WORDS = ("Quarterly", "pineapple", "zanzibar")


@pytest.fixture
def boxes(tmp_path: Path) -> GatewayMailboxes:
    return GatewayMailboxes(tmp_path / "gateway", "gw.example.org")


def _secret_message() -> bytes:
    return build_message(subject="Quarterly pineapple figures",
                         body="The zanzibar deal closes on Friday.\n")


def _every_file(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def test_mail_at_rest_cannot_be_found_on_disk(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create("journal from M365")
    raw = _secret_message()
    assert boxes.deliver(info.id, raw) is not None
    blob = b"".join(path.read_bytes() for path in _every_file(boxes.folder))
    for word in SECRET_WORDS:
        assert word.encode() not in blob
        assert word.lower().encode() not in blob.lower()
    assert password.encode() not in blob
    opened = boxes.unlock(info.id, password)
    [stored] = opened.messages()
    assert opened.read(stored.id) == raw
    assert stored.size == len(raw)


def test_files_and_folders_are_owner_only(boxes: GatewayMailboxes) -> None:
    info, _ = boxes.create(None)
    boxes.deliver(info.id, _secret_message())
    for path in [boxes.folder, *boxes.folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_wrong_password_is_refused(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    with pytest.raises(MailboxPasswordError) as raised:
        boxes.unlock(info.id, password + "x")
    assert password not in str(raised.value)
    assert boxes.get(info.id).last_pull is None


def test_passwd_keeps_old_mail_readable_with_the_new_password_only(
        boxes: GatewayMailboxes) -> None:
    info, old = boxes.create(None)
    raw = _secret_message()
    boxes.deliver(info.id, raw)
    with pytest.raises(MailboxPasswordError):
        boxes.change_password(info.id, "not-the-password", "whatever-new-1")
    boxes.change_password(info.id, old, "a brand new password")
    with pytest.raises(MailboxPasswordError):
        boxes.unlock(info.id, old)
    opened = boxes.unlock(info.id, "a brand new password")
    assert [opened.read(m.id) for m in opened.messages()] == [raw]


@pytest.mark.parametrize("where", [0, 20, 45, -1, -200])
@pytest.mark.parametrize("which", [0, 1])
def test_a_flipped_byte_is_reported_never_served(boxes: GatewayMailboxes, where: int,
                                                 which: int) -> None:
    info, password = boxes.create(None)
    raw = _secret_message()
    ids = [boxes.deliver(info.id, raw) for _ in range(2)]
    message_id = ids[which]  # one in the middle of a segment, one at its end
    assert message_id is not None
    flip(boxes.folder / info.id, message_id, where)
    opened = boxes.unlock(info.id, password)
    assert message_id in [m.id for m in opened.messages()]
    with pytest.raises(IntegrityError, match="altered"):
        opened.read(message_id)
    assert opened.read(ids[1 - which] or "") == raw


def test_a_message_copied_to_another_name_does_not_open(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    first = boxes.deliver(info.id, b"Subject: one\r\n\r\nfirst\r\n")
    second = boxes.deliver(info.id, b"Subject: two\r\n\r\nsecond\r\n")
    assert first and second
    # The first message's sealed bytes appended again as a record of the second's id.
    writer = segments.SegmentWriter(boxes.folder / info.id)
    forged = "00000000000000000001-00000000"
    writer.append(segments.encode(segments.MESSAGE, forged, sealed(boxes.folder / info.id,
                                                                   first)))
    writer.close()
    opened = boxes.unlock(info.id, password)
    with pytest.raises(IntegrityError):
        opened.read(forged)
    other, other_password = boxes.create(None)
    moved = segments.SegmentWriter(boxes.folder / other.id)
    moved.append(segments.encode(segments.MESSAGE, first,
                                 sealed(boxes.folder / info.id, first)))
    moved.close()
    with pytest.raises(IntegrityError):
        boxes.unlock(other.id, other_password).read(first)


def test_metadata_counts_without_the_password(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create("metered")
    assert (info.count, info.bytes, info.oldest, info.state) == (0, 0, None, "active")
    assert info.address == f"{info.id}@gw.example.org"
    for n in range(3):
        boxes.deliver(info.id, f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
    shown = boxes.get(info.id)
    assert shown.count == 3 and shown.bytes > 0 and shown.oldest is not None
    assert shown.name == "metered"
    boxes.unlock(info.id, password)
    assert boxes.get(info.id).last_pull is not None


def test_by_address(boxes: GatewayMailboxes) -> None:
    info, _ = boxes.create(None)
    assert boxes.by_address(info.address.upper()) == boxes.get(info.id)
    assert boxes.by_address(f"<{info.address}>") == boxes.get(info.id)
    assert boxes.by_address(f"{info.id}@other.example.org") is None
    assert boxes.by_address("aaaaaaaaaaaa@gw.example.org") is None
    assert boxes.is_mailbox_address("aaaaaaaaaaaa@GW.example.org")
    assert not boxes.is_mailbox_address("journal@example.org")


def test_suspended_takes_no_mail_but_drains(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    boxes.deliver(info.id, b"Subject: before\r\n\r\nx\r\n")
    boxes.set_state(info.id, SUSPENDED)
    with pytest.raises(MailboxUnavailable, match="suspended"):
        boxes.deliver(info.id, b"Subject: after\r\n\r\nx\r\n")
    with pytest.raises(MailboxUnavailable):
        boxes.deliver("aaaaaaaaaaaa", b"Subject: nobody\r\n\r\nx\r\n")
    opened = boxes.unlock(info.id, password)
    opened.delete([m.id for m in opened.messages()])
    assert boxes.get(info.id).count == 0


def test_delete_only_when_suspended_and_empty(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    boxes.deliver(info.id, b"Subject: x\r\n\r\nx\r\n")
    with pytest.raises(GatewayError, match="suspend"):
        boxes.delete(info.id)
    boxes.set_state(info.id, SUSPENDED)
    with pytest.raises(GatewayError, match="still holds mail"):
        boxes.delete(info.id)
    opened = boxes.unlock(info.id, password)
    opened.delete([m.id for m in opened.messages()])
    boxes.delete(info.id)
    assert boxes.every() == []
    with pytest.raises(MailboxUnavailable):
        boxes.get(info.id)


def test_a_delivery_key_stores_a_message_once(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    assert boxes.deliver(info.id, b"Subject: a\r\n\r\na\r\n", key="UIDL-1") is not None
    assert boxes.deliver(info.id, b"Subject: a\r\n\r\na\r\n", key="UIDL-1") is None
    assert boxes.deliver(info.id, b"Subject: b\r\n\r\nb\r\n", key="UIDL-2") is not None
    assert len(boxes.unlock(info.id, password).messages()) == 2


def test_staged_is_invisible_until_committed(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    kept = boxes.stage(info.id, b"Subject: kept\r\n\r\nk\r\n", key="k1")
    dropped = boxes.stage(info.id, b"Subject: dropped\r\n\r\nd\r\n", key="k2")
    assert kept is not None and dropped is not None
    opened = boxes.unlock(info.id, password)
    assert opened.messages() == []
    assert boxes.get(info.id).count == 0
    message_id = kept.commit()
    dropped.abandon()
    assert [m.id for m in opened.messages()] == [message_id]
    assert opened.read(message_id) == b"Subject: kept\r\n\r\nk\r\n"
    # An abandoned message's key is forgotten: it may come again.
    assert boxes.deliver(info.id, b"Subject: dropped\r\n\r\nd\r\n", key="k2") is not None
    with pytest.raises(GatewayError):
        kept.commit()


def test_concurrent_deliveries_share_fsyncs(boxes: GatewayMailboxes,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    info, password = boxes.create(None)
    boxes.deliver(info.id, b"Subject: first\r\n\r\nx\r\n")  # opens the segment
    passes: list[int] = []
    entered, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        passes.append(fd)
        if len(passes) == 1:
            entered.set()
            release.wait(30)
        real_fsync(fd)

    monkeypatch.setattr(segments.os, "fsync", slow_fsync)
    first = threading.Thread(target=boxes.deliver, args=(info.id, b"Subject: a\r\n\r\na\r\n"))
    first.start()
    assert entered.wait(30)
    # A pass is under way, but it started before these appends: they need another, and one
    # pass serves all of them.
    later = [threading.Thread(target=boxes.deliver,
                              args=(info.id, f"Subject: {n}\r\n\r\n{n}\r\n".encode()))
             for n in range(5)]
    for thread in later:
        thread.start()
    writer = boxes._writer(info.id)
    while len(writer._lock._waiters) < len(later):  # type: ignore[attr-defined]
        time.sleep(0.01)  # a readiness check: every delivery waits on the running pass
    release.set()
    for thread in [first, *later]:
        thread.join(30)
    assert len(passes) == 2
    assert len(boxes.unlock(info.id, password).messages()) == 7


def _one_delivery(boxes: GatewayMailboxes, mailbox_id: str) -> FileEvents:
    """What the SMTP endpoint's and the proxies' per-message calls touch in the mailbox."""
    with watching(boxes.folder / mailbox_id) as events:
        assert boxes.accepts(boxes.address_of(mailbox_id))
        assert boxes.is_active(mailbox_id)
        boxes.deliver(mailbox_id, b"Subject: one more\r\n\r\nx\r\n")
        staged = boxes.stage(mailbox_id, b"Subject: proxied\r\n\r\np\r\n")
        assert staged is not None
        staged.commit()
    return events


def test_a_delivery_reads_none_of_the_mail_held(boxes: GatewayMailboxes,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A delivery's cost does not grow with the mailbox: it opens no segment for reading and
    lists no folder, into a mailbox of one message as into one of many segments."""
    monkeypatch.setattr(segments, "SEGMENT_MAX_BYTES", 1024)  # many segments, quickly
    small, _ = boxes.create(None)
    large, _ = boxes.create(None)
    boxes.deliver(small.id, b"Subject: 0\r\n\r\n0\r\n")
    for n in range(60):
        boxes.deliver(large.id, f"Subject: {n}\r\n\r\n{n}\r\n".encode())
    assert len(segments.segment_files(boxes.folder / large.id)) > 5
    for info in (small, large):
        _one_delivery(boxes, info.id)  # each mailbox's record read and cached once
    into_small, into_large = _one_delivery(boxes, small.id), _one_delivery(boxes, large.id)
    for events, info in ((into_small, small), (into_large, large)):
        mailbox = boxes.folder / info.id
        assert events.reads_under(mailbox) == []
        assert events.listings_under(mailbox) == []
    assert len(into_large.opened) == len(into_small.opened)


def test_a_torn_tail_is_skipped(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    kept = boxes.deliver(info.id, b"Subject: kept\r\n\r\nk\r\n")
    torn = boxes.deliver(info.id, b"Subject: torn\r\n\r\nt\r\n")
    boxes.close()
    [segment] = segments.segment_files(boxes.folder / info.id)
    with segment.open("r+b") as f:
        f.truncate(segment.stat().st_size - 7)  # the last record cut short, as a crash can
    opened = boxes.unlock(info.id, password)
    assert [m.id for m in opened.messages()] == [kept]
    assert opened.read(kept or "") == b"Subject: kept\r\n\r\nk\r\n"
    with pytest.raises(MailboxUnavailable):
        opened.read(torn or "")
    # Later mail goes to a new segment, after the torn one.
    later = boxes.deliver(info.id, b"Subject: later\r\n\r\nl\r\n")
    assert [m.id for m in opened.messages()] == [kept, later]


@pytest.mark.parametrize("damage", ["length", "marker"])
def test_a_damaged_header_hides_no_later_mail(boxes: GatewayMailboxes, damage: str) -> None:
    info, password = boxes.create(None)
    bodies = [f"Subject: {n}\r\n\r\n{n}\r\n".encode() for n in ("one", "two", "three")]
    ids = [boxes.deliver(info.id, body) or "" for body in bodies]
    boxes.close()
    mailbox = boxes.folder / info.id
    [middle] = [r for r in segments.records(mailbox) if r.message_id == ids[1]]
    # A header is marker (4) | kind (1) | id (29) | length (4): the payload follows it.
    at = middle.offset - 4 if damage == "length" else middle.offset - 38
    with middle.segment.open("r+b") as f:
        f.seek(at)
        f.write(b"\xff\xff\xff\x7f" if damage == "length" else b"XXXX")
    opened = boxes.unlock(info.id, password)
    assert [m.id for m in opened.messages()] == ids
    assert opened.read(ids[0]) == bodies[0] and opened.read(ids[2]) == bodies[2]
    if damage == "length":
        with pytest.raises(IntegrityError, match="altered"):
            opened.read(ids[1])
    else:  # the marker is framing only: the sealed message itself is whole
        assert opened.read(ids[1]) == bodies[1]


def test_a_fully_deleted_segment_is_removed(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    for n in range(3):
        boxes.deliver(info.id, f"Subject: {n}\r\n\r\n{n}\r\n".encode())
    mailbox = boxes.folder / info.id
    opened = boxes.unlock(info.id, password)
    ids = [m.id for m in opened.messages()]
    opened.delete(ids[:2])
    # Held by its writer, the segment stays; the deleted messages are gone.
    assert [m.id for m in opened.messages()] == ids[2:]
    assert len(segments.segment_files(mailbox)) == 1
    boxes.close()
    opened.delete(ids[2:])
    assert segments.segment_files(mailbox) == []
    assert segments.tombstones(mailbox) == set()
    assert boxes.get(info.id).count == 0


def test_mailboxes_from_before_segments_are_read(boxes: GatewayMailboxes) -> None:
    """A message file in mail/ (the layout before segments) is listed, read and deleted."""
    info, password = boxes.create(None)
    mailbox = boxes.folder / info.id
    old_id = "00000000000000000042-0123abcd"
    public = sealing.WrappedKey.from_json(
        json.loads((mailbox / "mailbox.json").read_text())).public_key
    raw = b"Subject: old layout\r\n\r\nold\r\n"
    (mailbox / "mail").mkdir()
    (mailbox / "mail" / old_id).write_bytes(
        sealing.seal(public, raw, f"{info.id}/{old_id}".encode()))
    new_id = boxes.deliver(info.id, b"Subject: new\r\n\r\nnew\r\n")
    opened = boxes.unlock(info.id, password)
    assert [m.id for m in opened.messages()] == [old_id, new_id]
    assert opened.read(old_id) == raw
    opened.delete([old_id])
    assert not (mailbox / "mail" / old_id).exists()
    assert [m.id for m in opened.messages()] == [new_id]
