"""Uploading sealed volumes to the bucket, and keeping each object's Object Lock true.

Only a vault whose ``[store] blobs`` is an ``s3://`` location has anything to do here; for
local volumes every function returns at once.

An object's lock is decided from what it holds: its retain-until date is the latest of its
messages' (the stored date and the one the policies give now, whichever is later; a part
counts for every message that uses it), and it carries a legal hold while any of those
messages is under an active hold. ``refresh`` applies later changes (a hold placed or
released, a longer policy): the bucket lets a retention grow, never shrink, so a date only
ever moves later. ``reclaim`` deletes the object of a volume nothing points at any more,
and only once its lock has passed; ``verify`` reports every object whose lock falls short.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mailvault.compliance import holds, retention
from mailvault.store import catalog, file_modes, schema
from mailvault.store.blobs import volume_path
from mailvault.store.catalog import from_epoch, now
from mailvault.store.objects import SCHEME, Lock, ObjectBlobStore, drop_local
from mailvault.store.volumes import lock_exclusive

if TYPE_CHECKING:
    from mailvault.vault import Vault

# What the catalog says of a volume whose object was deleted (its id is never reused).
DELETED = "deleted:"


@dataclass
class UploadReport:
    """Volumes uploaded by one pass, and those left for a later one (and why)."""

    uploaded: list[int] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"uploaded": self.uploaded, "waiting": self.waiting}


def upload_pending(vault: Vault) -> UploadReport:
    """Seal every local volume no process is appending to (this one's included) and upload
    it with its lock; the catalog then names the object and the local file goes. Run when a
    command ends and when one starts, so a node killed between its local write and its upload
    finishes the upload when it runs again."""
    if not isinstance(vault.blobs, ObjectBlobStore):
        return UploadReport()
    vault.blobs.seal_open()
    return _upload_sealed(vault, vault.blobs)


def upload_aged(vault: Vault, seconds: float) -> UploadReport:
    """What a process that keeps writing (serve's archiver) runs now and then: seal the
    volumes it has appended to for ``seconds`` or more, leave younger ones open, and upload
    every sealed local volume (those that filled up included) with its lock."""
    if not isinstance(vault.blobs, ObjectBlobStore):
        return UploadReport()
    vault.blobs.seal_older_than(seconds)
    return _upload_sealed(vault, vault.blobs)


def _upload_sealed(vault: Vault, store: ObjectBlobStore) -> UploadReport:
    report = UploadReport()
    ready: list[tuple[int, Path]] = []
    for volume_id, place in sorted(catalog.volume_places(vault.engine).items()):
        if place.startswith((SCHEME, DELETED)):
            continue
        path = volume_path(Path(place), volume_id)
        if not path.exists():
            continue  # compacted away
        if not _seal(path):
            report.waiting[volume_id] = "a process is appending to it"
            continue
        ready.append((volume_id, path))
    if not ready:
        return report
    locks = locks_for(vault, [volume_id for volume_id, _path in ready])
    for volume_id, path in ready:
        url = store.upload(volume_id, path, locks.get(volume_id, Lock(None, False)))
        catalog.set_volume_place(vault.engine, volume_id, url)
        drop_local(path)
        report.uploaded.append(volume_id)
    return report


def locks_for(vault: Vault, volume_ids: Collection[int]) -> dict[int, Lock]:
    """The lock each of these volumes' objects must carry (volumes nothing points at: none)."""
    members = _messages_in(vault, volume_ids)
    ids = sorted({m for found in members.values() for m in found})
    until: dict[int, int] = {m: value[0] for m, value in retention.compute(vault, ids).items()}
    with vault.engine.connect() as conn:
        for message_id, (stored, _policy) in retention.retain_until(conn, ids).items():
            until[message_id] = max(stored, until.get(message_id, stored))
    held = set(holds.held(vault))
    moment = now()
    out: dict[int, Lock] = {}
    for volume_id, found in members.items():
        latest = max((until[m] for m in found if m in until), default=None)
        out[volume_id] = Lock(latest if latest is not None and latest > moment else None,
                              bool(found & held))
    return out


def refresh(vault: Vault) -> list[int]:
    """Bring every object's lock up to what its messages need now (a hold placed or
    released, a retention made longer); returns the volumes whose object changed."""
    changed = []
    for found in _locks(vault):
        if found.short_until:
            found.store.objects.extend(found.key, found.wanted.retain_until or 0)
            changed.append(found.volume_id)
        if found.wanted.legal_hold != found.current.legal_hold:
            found.store.objects.set_legal_hold(found.key, found.wanted.legal_hold)
            changed.append(found.volume_id)
    return sorted(set(changed))


def lock_problems(vault: Vault) -> list[str]:
    """Objects whose lock does not cover their messages' retention or holds (verify)."""
    problems = []
    for found in _locks(vault):
        where = f"the object of volume {found.volume_id} ({found.key})"
        if found.short_until:
            problems.append(f"{where} is locked until {_day(found.current.retain_until)}, "
                            f"its messages are kept until {_day(found.wanted.retain_until)}.")
        if found.wanted.legal_hold and not found.current.legal_hold:
            problems.append(f"{where} holds messages under a legal hold and has no legal "
                            "hold.")
    return problems


@dataclass(frozen=True)
class _ObjectLock:
    """One object's lock as the bucket has it, beside the lock its messages need."""

    store: ObjectBlobStore
    volume_id: int
    key: str
    current: Lock
    wanted: Lock

    @property
    def short_until(self) -> bool:
        """The bucket keeps the object for less time than its messages must be kept."""
        return (self.wanted.retain_until is not None
                and (self.current.retain_until or 0) < self.wanted.retain_until)


def _locks(vault: Vault) -> list[_ObjectLock]:
    """Every uploaded object's current and wanted lock, by volume."""
    places = _objects(vault)
    if not places:
        return []
    store = vault.blobs
    assert isinstance(store, ObjectBlobStore)
    found = []
    for volume_id, wanted in sorted(locks_for(vault, places).items()):
        key = store.objects.bucket.key_of(places[volume_id])
        found.append(_ObjectLock(store, volume_id, key, store.objects.lock(key), wanted))
    return found


def reclaim(vault: Vault) -> list[int]:
    """Delete the objects of volumes nothing points at any more, whose lock has passed and
    that carry no legal hold; returns the volumes whose object was deleted. One the bucket
    still protects is left for a later run."""
    store = vault.blobs
    if not isinstance(store, ObjectBlobStore):
        return []
    places = catalog.volume_places(vault.engine)
    remote = {v: url for v, url in places.items() if url.startswith(SCHEME)}
    used = _messages_in(vault, remote)
    deleted = []
    moment = now()
    for volume_id, url in sorted(remote.items()):
        if used.get(volume_id):
            continue
        key = store.objects.bucket.key_of(url)
        lock = store.objects.lock(key)
        if lock.legal_hold or (lock.retain_until is not None and lock.retain_until > moment):
            continue
        delete_object(vault, volume_id)
        deleted.append(volume_id)
    return deleted


def delete_object(vault: Vault, volume_id: int) -> None:
    """Delete one volume's object, then record it gone. StoreError in one sentence when the
    bucket refuses (its lock has not passed): the catalog still names the object then."""
    store = vault.blobs
    assert isinstance(store, ObjectBlobStore)
    url = catalog.volume_places(vault.engine)[volume_id]
    store.objects.delete(store.objects.bucket.key_of(url))
    catalog.set_volume_place(vault.engine, volume_id, DELETED + url)


def _objects(vault: Vault) -> dict[int, str]:
    """Uploaded volumes that something still points at, with their object URLs."""
    if not isinstance(vault.blobs, ObjectBlobStore):
        return {}
    places = {v: url for v, url in catalog.volume_places(vault.engine).items()
              if url.startswith(SCHEME)}
    used = _messages_in(vault, places)
    return {v: url for v, url in places.items() if used.get(v)}


def _messages_in(vault: Vault, volume_ids: Collection[int]) -> dict[int, set[int]]:
    """For each volume, the messages whose skeleton or one of whose parts it holds."""
    wanted = list(volume_ids)
    out: dict[int, set[int]] = {v: set() for v in wanted}
    m, p, mp = schema.messages, schema.parts, schema.message_parts
    with vault.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            some = wanted[start:start + 500]
            for row in conn.execute(select(m.c.volume_id, m.c.id)
                                    .where(m.c.volume_id.in_(some))):
                out[row.volume_id].add(row.id)
            for row in conn.execute(select(p.c.volume_id, mp.c.message_id)
                                    .join(mp, mp.c.part_sha256 == p.c.sha256)
                                    .where(p.c.volume_id.in_(some))):
                out[row.volume_id].add(row.message_id)
    return out


def _seal(path: Path) -> bool:
    """Make a volume file read-only unless a process holds its append lock (False then)."""
    if not os.stat(path).st_mode & stat.S_IWUSR:
        return True
    fd = os.open(path, os.O_RDONLY)
    try:
        if not lock_exclusive(fd):
            return False
        os.fsync(fd)
        os.chmod(path, file_modes.READ_ONLY_MODE)
        return True
    finally:
        os.close(fd)


def _day(stamp: int | None) -> str:
    moment = from_epoch(stamp)
    return moment.date().isoformat() if moment else "never"
