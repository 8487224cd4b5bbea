"""The mailbox store: mail at rest is unreadable without the password, the password can change
without losing mail, a damaged message is reported and never served, and the metadata tells
nothing of the content."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mailvault.errors import (
    GatewayError,
    IntegrityError,
    MailboxPasswordError,
    MailboxUnavailable,
)
from mailvault.gateway.mailboxes import SUSPENDED, GatewayMailboxes
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
def test_a_flipped_byte_is_reported_never_served(boxes: GatewayMailboxes, where: int) -> None:
    info, password = boxes.create(None)
    message_id = boxes.deliver(info.id, _secret_message())
    assert message_id is not None
    path = boxes.folder / info.id / "mail" / message_id
    data = bytearray(path.read_bytes())
    data[where] ^= 0x01
    path.write_bytes(bytes(data))
    opened = boxes.unlock(info.id, password)
    with pytest.raises(IntegrityError, match="altered"):
        opened.read(message_id)


def test_a_message_copied_to_another_name_does_not_open(boxes: GatewayMailboxes) -> None:
    info, password = boxes.create(None)
    first = boxes.deliver(info.id, b"Subject: one\r\n\r\nfirst\r\n")
    second = boxes.deliver(info.id, b"Subject: two\r\n\r\nsecond\r\n")
    assert first and second
    mail = boxes.folder / info.id / "mail"
    (mail / second).write_bytes((mail / first).read_bytes())
    with pytest.raises(IntegrityError):
        boxes.unlock(info.id, password).read(second)


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
