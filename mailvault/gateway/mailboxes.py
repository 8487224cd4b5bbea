"""Gateway mailboxes: mail held encrypted for someone who pulls it later.

Each mailbox is a folder (0700) under the gateway folder:

    <id>/mailbox.json   id, name, state, created, last pull, public key, wrapped private key
    <id>/segments/      append-only segment files of sealed records (``segments.py``): the
                        messages, the SMTP proxy's staged copies and their commits
    <id>/tombstones     ids of deleted messages and abandoned staged copies
    <id>/seen/          one empty file per delivery key (a provider's UIDL, hashed) already
                        stored, so the POP3 proxy stores a retrieved message once
    <id>/mail/, staged/ one file per message, from before segments: read, never written
    <id>/lock           flock'ed while mailbox.json or the tombstones change

A message is sealed in memory (``sealing.seal``) before its first byte is written, appended
as one record to its writer's segment, and ``deliver`` returns once an fsync covering that
record has finished (shared with the deliveries appended meanwhile: group commit). Message
ids start with the arrival time in nanoseconds, so sorting them is arrival order and the
oldest message is known without the password. The metadata (count, bytes, oldest, last pull)
comes from record headers only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailvault.config import GatewaySettings
from mailvault.errors import (
    GatewayError,
    IntegrityError,
    MailboxUnavailable,
    StorageFullError,
)
from mailvault.gateway import sealing, segments
from mailvault.gateway.retries import RetryWindow
from mailvault.store import file_modes

ACTIVE = "active"
SUSPENDED = "suspended"
STATES = (ACTIVE, SUSPENDED)
RECORD_FILE = "mailbox.json"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_ID_LENGTH = 12
_MAILBOX_ID = re.compile(r"^[a-z2-7]{12}$")
_MESSAGE_ID = re.compile(r"^[0-9]{20}-[0-9a-f]{8}$")


@dataclass(frozen=True)
class MailboxInfo:
    """What anyone may know of a mailbox: never its password, key or mail."""

    id: str
    name: str
    address: str
    state: str
    created: str
    count: int
    bytes: int
    oldest: str | None
    last_pull: str | None

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values."""
        return {"id": self.id, "name": self.name, "address": self.address,
                "state": self.state, "created": self.created, "count": self.count,
                "bytes": self.bytes, "oldest": self.oldest, "last_pull": self.last_pull}


@dataclass(frozen=True)
class StoredMessage:
    """One message in an unlocked mailbox: its id (which is also its stable UIDL) and the
    size of its plaintext."""

    id: str
    size: int

    @property
    def uidl(self) -> str:
        """The POP3 unique id: the message id, which is never reused."""
        return self.id


class Staged:
    """A sealed message not yet visible in the mailbox: in memory only (``durable=False``)
    or written and fsynced as a staged record."""

    def __init__(self, mailbox: Path, message_id: str, sealed: bytes, seen: Path | None,
                 writer: segments.SegmentWriter, durable: bool, digest: bytes) -> None:
        self._mailbox = mailbox
        self.message_id = message_id
        self._sealed = sealed
        self._seen = seen
        self._writer = writer
        self._durable = durable
        self.digest = digest  # SHA-256 of the raw message
        self.done = False

    @property
    def mailbox_id(self) -> str:
        """The mailbox the copy is for."""
        return self._mailbox.name

    def commit(self) -> str:
        """Make the message visible (durably: once an fsync covers it); returns its id."""
        self._finish()
        try:
            self._writer.append(self._record())
        except (GatewayError, StorageFullError):
            self._failed()
            raise
        return self.message_id

    def _record(self) -> bytes:
        """What commit appends: the sealed message, or the commit of a durable staged one."""
        if self._durable:
            return segments.encode(segments.COMMIT, self.message_id)
        return segments.encode(segments.MESSAGE, self.message_id, self._sealed)

    def _failed(self) -> None:
        """After a failed write or fsync of the visible record: the record may be written
        although its fsync failed, and the client is told the message was not taken, so it
        must not show (it would be a second copy once the client sends it again). If even
        the tombstone cannot be written, it shows. (A durable staged copy stays staged.)"""
        if not self._durable:
            with contextlib.suppress(OSError), _locked(self._mailbox):
                segments.add_tombstones(self._mailbox, [self.message_id])

    def abandon(self) -> None:
        """Remove the message as if it had never come (its delivery key is forgotten too)."""
        self._finish()
        if self._durable:
            with _locked(self._mailbox):
                try:
                    segments.add_tombstones(self._mailbox, [self.message_id])
                except OSError as exc:
                    raise segments.write_error(exc) from exc
        if self._seen is not None:
            self._seen.unlink(missing_ok=True)

    def _finish(self) -> None:
        if self.done:
            raise GatewayError("a staged gateway message was already committed or abandoned.")
        self.done = True


@dataclass
class WrittenBatch:
    """Messages whose copies ``write_together`` appended, not yet known to be durable: by
    message, the error that stopped it (None so far) and its copies with their tickets."""

    errors: list[GatewayError | StorageFullError | None] = field(default_factory=list)
    written: list[list[tuple[Staged, int]]] = field(default_factory=list)


class GatewayMailboxes:
    """The mailboxes in one gateway folder. Holds no password and no private key: it can
    create mailboxes, deliver mail to them and report on them, and unlock one for reading."""

    def __init__(self, folder: Path, domain: str = "") -> None:
        self.folder = folder
        self._folder_text = str(folder)
        self.domain = domain.strip().lower()
        self._writers: dict[str, segments.SegmentWriter] = {}
        self._writers_lock = threading.Lock()
        # Each mailbox's record as last read, by the stamp of the file it was read from.
        self._records: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._retries = RetryWindow()

    @classmethod
    def of(cls, vault_dir: Path, settings: GatewaySettings) -> GatewayMailboxes:
        """The mailboxes of a vault's ``[gateway]`` settings (folder empty: VAULT/gateway)."""
        folder = Path(settings.folder).expanduser() if settings.folder else vault_dir / "gateway"
        return cls(folder, settings.domain)

    def create(self, name: str | None = None) -> tuple[MailboxInfo, str]:
        """A new active mailbox and its password, which is not kept anywhere: the caller shows
        it once. A lost password means the mailbox's mail is lost."""
        file_modes.make_folder(self.folder)
        password = sealing.new_password()
        while True:
            mailbox_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
            path = self.folder / mailbox_id
            try:
                path.mkdir(mode=file_modes.FOLDER_MODE)
                break
            except FileExistsError:
                continue
        path.chmod(file_modes.FOLDER_MODE)
        for sub in (segments.SEGMENTS, "seen"):
            file_modes.make_folder(path / sub)
        record = {"id": mailbox_id, "name": name or "", "state": ACTIVE,
                  "created": _now(), "last_pull": None,
                  **sealing.new_key_pair(password, mailbox_id).to_json()}
        _write_record(path, record)
        file_modes.fsync_folder(self.folder)
        return self.get(mailbox_id), password

    def ids(self) -> list[str]:
        """Every mailbox id, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(entry.name for entry in self.folder.iterdir()
                      if _MAILBOX_ID.match(entry.name) and (entry / RECORD_FILE).is_file())

    def every(self) -> list[MailboxInfo]:
        """Every mailbox, by id."""
        return [self.get(mailbox_id) for mailbox_id in self.ids()]

    def get(self, mailbox_id: str) -> MailboxInfo:
        """One mailbox's metadata; MailboxUnavailable when there is none by that id."""
        path = self._path(mailbox_id)
        record = _read_record(path)
        visible, _ = _contents(path)
        return MailboxInfo(id=record["id"], name=record["name"], address=self.address_of(
            record["id"]), state=record["state"], created=record["created"],
            count=len(visible), bytes=sum(held.size for held in visible),
            oldest=_arrival(visible[0].message_id) if visible else None,
            last_pull=record["last_pull"])

    def address_of(self, mailbox_id: str) -> str:
        """The mailbox's address, or "" while no gateway domain is set."""
        return f"{mailbox_id}@{self.domain}" if self.domain else ""

    def by_address(self, address: str) -> MailboxInfo | None:
        """The mailbox whose address this is (any letter case), or None."""
        mailbox_id = self._id_of(address)
        return None if mailbox_id is None else self.get(mailbox_id)

    def is_active(self, mailbox_id: str) -> bool:
        """Whether ``mailbox_id`` is a known, active mailbox; reads its record only, and only
        once per change (the proxies ask this at every login)."""
        try:
            return bool(self._current_record(mailbox_id)["state"] == ACTIVE)
        except GatewayError:
            return False

    def accepts(self, address: str) -> bool:
        """Whether mail for this address would be taken now (a known, active mailbox).
        Reads the mailbox's record only (one stat while it is unchanged): the SMTP endpoint
        asks this for every RCPT, on its event loop."""
        mailbox_id = self._id_named(address)
        if mailbox_id is None:
            return False
        try:
            return bool(self._current_record(mailbox_id)["state"] == ACTIVE)
        except MailboxUnavailable:
            return False

    def _current_record(self, mailbox_id: str) -> dict[str, Any]:
        """The mailbox's record as it is on disk now, read again only once the file was
        replaced: the SMTP endpoint asks for it with every RCPT and every message, and a
        stat (of a path built as text: this runs on the event loop for every RCPT) costs a
        fraction of an open, a read and a parse. MailboxUnavailable when there is no such
        mailbox."""
        if not _MAILBOX_ID.match(mailbox_id):
            raise MailboxUnavailable(f"there is no gateway mailbox {mailbox_id!r}.")
        try:
            stat = os.stat(f"{self._folder_text}/{mailbox_id}/{RECORD_FILE}")
        except FileNotFoundError:
            raise MailboxUnavailable(f"there is no gateway mailbox {mailbox_id!r}.") from None
        except OSError as exc:
            raise GatewayError(f"the record of gateway mailbox {mailbox_id} cannot be read: "
                               f"{exc}.") from exc
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._records.get(mailbox_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        record = _read_record(self.folder / mailbox_id)
        self._records[mailbox_id] = (stamp, record)
        return record

    def _id_of(self, address: str) -> str | None:
        """The id of the existing mailbox the address names, or None."""
        local = self._id_named(address)
        if local is None or not (self.folder / local / RECORD_FILE).is_file():
            return None
        return local

    def _id_named(self, address: str) -> str | None:
        """The mailbox id an address in the gateway's domain names (None for any other
        address), whether or not there is such a mailbox."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        if not self.domain or domain.lower() != self.domain:
            return None
        local = local.lower()
        return local if _MAILBOX_ID.match(local) else None

    def is_mailbox_address(self, address: str) -> bool:
        """Whether the address is in the gateway's domain (a mailbox's, known or not)."""
        domain = address.strip().strip("<>").rpartition("@")[2].lower()
        return bool(self.domain) and domain == self.domain

    def set_state(self, mailbox_id: str, state: str) -> MailboxInfo:
        """Suspend (no new mail; it can still be drained) or resume a mailbox."""
        if state not in STATES:
            raise GatewayError(f"a gateway mailbox is {' or '.join(STATES)}, not {state!r}.")
        path = self._path(mailbox_id)
        with _locked(path):
            record = _read_record(path)
            record["state"] = state
            _write_record(path, record)
        return self.get(mailbox_id)

    def delete(self, mailbox_id: str) -> None:
        """Remove a mailbox that is suspended and holds no mail (staged copies included)."""
        info = self.get(mailbox_id)
        path = self._path(mailbox_id)
        if info.state != SUSPENDED:
            raise GatewayError(f"gateway mailbox {mailbox_id} is {info.state}: suspend it "
                               "before deleting it.")
        if info.count or _contents(path)[1]:
            raise GatewayError(f"gateway mailbox {mailbox_id} still holds mail: pull it "
                               "before deleting the mailbox.")
        # Renamed away first so that a crash mid-way never leaves a half-deleted mailbox
        # that still answers to its id.
        with self._writers_lock:
            writer = self._writers.pop(mailbox_id, None)
        if writer is not None:
            writer.close()
        doomed = self.folder / f".deleted-{mailbox_id}"
        os.replace(path, doomed)
        file_modes.fsync_folder(self.folder)
        shutil.rmtree(doomed)

    def change_password(self, mailbox_id: str, old: str, new: str) -> None:
        """Re-wrap the mailbox's private key under ``new``; ``old`` must unlock it. Mail
        already held stays readable (it is sealed to the key pair, not to the password)."""
        if not new:
            raise GatewayError("the new password of a gateway mailbox cannot be empty.")
        path = self._path(mailbox_id)
        with _locked(path):
            record = _read_record(path)
            wrapped = sealing.WrappedKey.from_json(record)
            private = sealing.unwrap(wrapped, old, mailbox_id)
            record.update(sealing.wrap(private, wrapped.public_key, new, mailbox_id).to_json())
            _write_record(path, record)

    def deliver(self, mailbox_id: str, raw: bytes, *, key: str | None = None) -> str | None:
        """Seal ``raw`` to the mailbox and store it durably; its message id. With ``key``
        (a provider's UIDL), a message already stored under that key is not stored again
        (None). MailboxUnavailable for an unknown or suspended mailbox."""
        staged = self.stage(mailbox_id, raw, key=key, durable=False)
        return None if staged is None else staged.commit()

    def stage(self, mailbox_id: str, raw: bytes, *, key: str | None = None,
              durable: bool = True) -> Staged | None:
        """Seal ``raw`` to the mailbox without making it visible: ``commit()`` shows it,
        ``abandon()`` removes it. None when ``key`` was stored already.

        With ``durable`` (the SMTP proxy, before it relays the message) the sealed copy is
        appended as a staged record and fsynced before this returns. ``durable=False`` keeps
        it in memory until ``commit()`` appends it, for a caller that acknowledges nothing
        before the commit (``deliver``, the SMTP endpoint): a crash before then loses only a
        message that no one was told was stored. Such a copy is not made (None) when a
        failed delivery of the same message left one in the mailbox (``settle``)."""
        record = self._current_record(mailbox_id)
        path = self.folder / mailbox_id
        if record["state"] != ACTIVE:
            raise MailboxUnavailable(f"gateway mailbox {mailbox_id} is suspended.")
        digest = hashlib.sha256(raw).digest()
        if not durable and self._retries.held(mailbox_id, digest):
            return None
        seen: Path | None = None
        if key is not None:
            seen = path / "seen" / hashlib.sha256(key.encode()).hexdigest()
            try:
                file_modes.make_folder(seen.parent)  # a restored backup holds no empty folder
                os.close(os.open(seen, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                 file_modes.FILE_MODE))
                file_modes.fsync_folder(path / "seen")
            except FileExistsError:
                return None
            except OSError as exc:
                seen.unlink(missing_ok=True)
                raise segments.write_error(exc) from exc
        message_id = f"{time.time_ns():020d}-{secrets.token_hex(4)}"
        public = sealing.WrappedKey.from_json(record).public_key
        # Sealed whole in memory: no byte of the message reaches the disk in clear.
        sealed = sealing.seal(public, raw, _aad(mailbox_id, message_id))
        writer = self._writer(mailbox_id)
        if durable:
            try:
                writer.append(segments.encode(segments.STAGED, message_id, sealed))
            except (GatewayError, StorageFullError):
                if seen is not None:
                    seen.unlink(missing_ok=True)
                raise
        return Staged(path, message_id, sealed, seen, writer, durable, digest)

    def write_together(self, messages: list[list[Staged]]) -> WrittenBatch:
        """Append the visible records of several messages' copies without waiting for their
        fsync (the gateway writer process's batch); ``settle`` then syncs each mailbox once
        for them all. A message one of whose copies cannot be written fails: its later copies
        are abandoned, the failed one is tombstoned (``Staged._failed``)."""
        batch = WrittenBatch()
        for copies in messages:
            error: GatewayError | StorageFullError | None = None
            done: list[tuple[Staged, int]] = []
            for copy in copies:
                if error is not None:
                    copy.abandon()
                    continue
                copy._finish()
                try:
                    done.append((copy, copy._writer.write(copy._record())))
                except (GatewayError, StorageFullError) as exc:
                    error = exc
                    copy._failed()
            batch.errors.append(error)
            batch.written.append(done)
        return batch

    def settle(self, batch: WrittenBatch) -> list[GatewayError | StorageFullError | None]:
        """Wait for one fsync per mailbox covering the batch; each message's error, None when
        every copy of it is durable. A message one of whose copies could not be written or
        synced fails (the client hears 4xx and sends it again): a copy whose fsync failed is
        tombstoned, and those that are durable are remembered (``retries.py``) so that the
        client's retry stores no second copy in their mailboxes."""
        errors = list(batch.errors)
        highest: dict[segments.SegmentWriter, int] = {}
        for done in batch.written:
            for copy, ticket in done:
                highest[copy._writer] = max(ticket, highest.get(copy._writer, 0))
        unsynced: dict[segments.SegmentWriter, GatewayError | StorageFullError] = {}
        for writer, ticket in highest.items():
            try:
                writer.wait(ticket, paced=False)
            except (GatewayError, StorageFullError) as exc:
                unsynced[writer] = exc
        for index, done in enumerate(batch.written):
            lost = [copy for copy, _ in done if copy._writer in unsynced]
            if lost and errors[index] is None:
                errors[index] = unsynced[lost[0]._writer]
            if errors[index] is None:
                continue
            for copy in lost:
                copy._failed()
            for copy, _ in done:
                if copy._writer not in unsynced:
                    self._retries.remember(copy.mailbox_id, copy.digest)
        return errors

    def staged(self, mailbox_id: str) -> list[str]:
        """The ids of the mailbox's staged copies not yet committed or abandoned."""
        return [held.message_id for held in _contents(self._path(mailbox_id))[1]]

    def recover_staged(self) -> int:
        """Make visible every staged copy a stopped process left behind (the SMTP proxy's,
        between its copy and the provider's answer). Whether the provider took such a message
        cannot be known any more, so it is kept rather than lost; the archive then holds it
        even if the provider refused it. Copies a live writer still holds are left alone.
        Returns how many were kept."""
        kept = 0
        for mailbox_id in self.ids():
            path = self.folder / mailbox_id
            with _locked(path):
                _, staged = _contents(path)
                for held in staged:
                    if held.record is None:
                        os.replace(path / "staged" / held.message_id,
                                   path / "mail" / held.message_id)
                        file_modes.fsync_folder(path / "mail")
                    elif segments.held(held.record.segment):
                        continue
                    else:
                        self._writer(mailbox_id).append(
                            segments.encode(segments.COMMIT, held.message_id))
                    kept += 1
        return kept

    def close(self) -> None:
        """Release the segments this instance writes to (so they can be compacted)."""
        with self._writers_lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()

    def _writer(self, mailbox_id: str) -> segments.SegmentWriter:
        with self._writers_lock:
            writer = self._writers.get(mailbox_id)
            if writer is None:
                writer = self._writers[mailbox_id] = segments.SegmentWriter(
                    self.folder / mailbox_id)
            return writer

    def unlock(self, mailbox_id: str, password: str) -> OpenMailbox:
        """The mailbox opened for reading; MailboxPasswordError for a wrong password.
        Records the time as the mailbox's last pull."""
        path = self._path(mailbox_id)
        private = sealing.unwrap(sealing.WrappedKey.from_json(_read_record(path)), password,
                                 mailbox_id)
        with _locked(path):
            record = _read_record(path)
            record["last_pull"] = _now()
            _write_record(path, record)
        return OpenMailbox(mailbox_id, path, private)

    def _path(self, mailbox_id: str) -> Path:
        if not _MAILBOX_ID.match(mailbox_id) or \
                not (self.folder / mailbox_id / RECORD_FILE).is_file():
            raise MailboxUnavailable(f"there is no gateway mailbox {mailbox_id!r}.")
        return self.folder / mailbox_id


class OpenMailbox:
    """A mailbox unlocked with its password: its mail can be read and deleted."""

    def __init__(self, mailbox_id: str, path: Path, private_key: bytes) -> None:
        self.id = mailbox_id
        self._path = path
        self._private = private_key
        # Where each message lies, as the last listing found it: a pull reads every message
        # it listed without scanning the segments again for each.
        self._where: dict[str, _Held] = {}

    def messages(self) -> list[StoredMessage]:
        """The visible messages, oldest first, with their plaintext sizes (the sealed size
        less the fixed overhead, so listing decrypts nothing)."""
        overhead = sealing.HEADER_BYTES + 16
        visible = _contents(self._path)[0]
        self._where = {held.message_id: held for held in visible}
        return [StoredMessage(id=held.message_id, size=max(held.size - overhead, 0))
                for held in visible]

    def read(self, message_id: str) -> bytes:
        """The message's raw bytes; IntegrityError when its stored bytes were altered (they
        are never returned), MailboxUnavailable when there is no such message."""
        missing = MailboxUnavailable(f"there is no message {message_id!r} in this mailbox.")
        if not _MESSAGE_ID.match(message_id):
            raise missing
        found = self._where.get(message_id)
        if found is None or (found.record is not None and not found.record.segment.exists()):
            self.messages()
            found = self._where.get(message_id)
        try:
            if found is None:
                raise FileNotFoundError
            if found.record is None:
                sealed = (self._path / "mail" / message_id).read_bytes()
            else:
                sealed = segments.read_payload(found.record)
            return sealing.open_sealed(self._private, sealed, _aad(self.id, message_id))
        except FileNotFoundError:
            raise missing from None
        except IntegrityError:
            raise IntegrityError(f"gateway message {message_id} in mailbox {self.id} is "
                                 "damaged: its bytes were altered, so it is not served.") from None

    def delete(self, message_ids: list[str]) -> None:
        """Remove messages (durably); ids no longer there are passed over. A segment whose
        every message is deleted is removed once no writer holds it."""
        wanted = set(message_ids)
        with _locked(self._path):
            visible, _ = _contents(self._path)
            doomed = [held for held in visible if held.message_id in wanted]
            for held in doomed:
                self._where.pop(held.message_id, None)
            legacy = [held for held in doomed if held.record is None]
            for held in legacy:
                (self._path / "mail" / held.message_id).unlink(missing_ok=True)
            if legacy:
                file_modes.fsync_folder(self._path / "mail")
            try:
                segments.add_tombstones(self._path, [held.message_id for held in doomed
                                                     if held.record is not None])
                segments.compact(self._path)
            except OSError as exc:
                raise segments.write_error(exc) from exc


@dataclass(frozen=True)
class _Held:
    """A message in a mailbox: a segment record, or (record None) a file in mail/ or staged/
    from before segments."""

    message_id: str
    size: int
    record: segments.Record | None


def _contents(path: Path) -> tuple[list[_Held], list[_Held]]:
    """The mailbox's visible messages and its staged copies not yet settled, each by id
    (so oldest first). Reads segment headers, tombstones and names only."""
    dead = segments.tombstones(path)
    visible: dict[str, _Held] = {}
    staged: dict[str, _Held] = {}
    committed: set[str] = set()
    for record in segments.records(path):
        if record.message_id in dead:
            continue
        held = _Held(record.message_id, record.length, record)
        if record.kind == segments.MESSAGE:
            visible[record.message_id] = held
        elif record.kind == segments.STAGED:
            staged[record.message_id] = held
        elif record.kind == segments.COMMIT:
            committed.add(record.message_id)
    for message_id in committed & staged.keys():
        visible[message_id] = staged.pop(message_id)
    for sub, into in (("mail", visible), ("staged", staged)):
        if (path / sub).is_dir():
            for entry in os.scandir(path / sub):
                if _MESSAGE_ID.match(entry.name):
                    into.setdefault(entry.name, _Held(entry.name, entry.stat().st_size, None))
    return ([visible[key] for key in sorted(visible)],
            [staged[key] for key in sorted(staged)])


def _aad(mailbox_id: str, message_id: str) -> bytes:
    return f"{mailbox_id}/{message_id}".encode()


def _arrival(message_id: str) -> str:
    seconds = int(message_id.split("-")[0]) / 1e9
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads((path / RECORD_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise GatewayError(f"the record of gateway mailbox {path.name} cannot be read: "
                           f"{exc}.") from exc
    return record


def _write_record(path: Path, record: dict[str, Any]) -> None:
    try:
        file_modes.write_replacing(path / RECORD_FILE, json.dumps(record, indent=2).encode())
        file_modes.fsync_folder(path)
    except OSError as exc:
        raise segments.write_error(exc) from exc


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = file_modes.open_new(path / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
