"""Compaction: reclaim the space of released blobs in sealed volumes.

Tier moves leave the old copy behind and disposition leaves the disposed blobs behind; both
are unreferenced bytes in volumes that are read-only on disk. Compaction copies every record
the catalog still points at into the tier's newest volume (a Deep chunk that lost members is
repacked without them), fsyncs, checks each copy by reading it back, switches the catalog's
pointers in one transaction, and only then deletes the old file. A crash before the switch
leaves the old volume in use and some unreferenced bytes in the new one; a crash after it
leaves a file no record points at, which the next run removes as wholly free. Nothing the
catalog references is ever dropped: the live set is read from the catalog, not guessed.
A volume's catalog row is kept after its file is gone, so that its id is never reused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zstandard
from sqlalchemy import select, update

from mailvault.errors import IntegrityError
from mailvault.store import audit, chunks, file_modes, schema
from mailvault.store.blobs import KIND_CHUNK, KIND_MESSAGE, KIND_PART, volume_path
from mailvault.store.volumes import Location, lock_exclusive

if TYPE_CHECKING:
    from mailvault.vault import Vault


@dataclass
class CompactionReport:
    """What one compaction run did."""

    volumes: list[int] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    records_copied: int = 0
    chunks_repacked: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"volumes": self.volumes, "bytes_before": self.bytes_before,
                "bytes_after": self.bytes_after, "reclaimed": self.bytes_before
                - self.bytes_after, "records_copied": self.records_copied,
                "chunks_repacked": self.chunks_repacked}


@dataclass
class _Record:
    """One live record of a volume and the blobs the catalog reads from it."""

    location: Location
    members: set[tuple[int, bytes]] = field(default_factory=set)


@dataclass(frozen=True)
class VolumeUse:
    """A volume's size on disk and the bytes the catalog still points at."""

    id: int
    tier: str
    path: Path
    size: int
    live: int
    sealed: bool

    @property
    def free_share(self) -> float:
        return 1 - self.live / self.size if self.size else 0.0


def usage(vault: Vault) -> list[VolumeUse]:
    """Every volume in the catalog that still exists on disk, with its live bytes."""
    live: dict[int, dict[int, int]] = {}
    with vault.engine.connect() as conn:
        for table in (schema.messages, schema.parts):
            for row in conn.execute(select(table.c.volume_id, table.c.offset, table.c.length)):
                live.setdefault(row.volume_id, {})[row.offset] = row.length
        volumes = conn.execute(select(schema.volumes)).all()
    out = []
    for row in volumes:
        path = volume_path(Path(row.folder), row.id)
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        out.append(VolumeUse(row.id, row.tier, path, info.st_size,
                             sum(live.get(row.id, {}).values()),
                             not info.st_mode & stat.S_IWUSR))
    return out


def compact(vault: Vault, actor: str, *, min_free: float = 0.25,
            volume_ids: Iterable[int] | None = None, include_open: bool = False
            ) -> CompactionReport:
    """Compact sealed volumes with at least ``min_free`` of their bytes released (or exactly
    ``volume_ids``); ``include_open`` also seals and compacts volumes still open for appends,
    unless a process is appending to them right now."""
    report = CompactionReport()
    forced = set(volume_ids) if volume_ids is not None else None
    for use in usage(vault):
        if forced is not None and use.id not in forced:
            continue
        if forced is None and (use.free_share < min_free or use.size == 0):
            continue
        if not use.sealed and not include_open:
            continue
        _compact_one(vault, use, report)
    if report.volumes:
        with vault.engine.begin() as conn:
            audit.record(conn, actor, "compact", report.to_json())
    return report


def _compact_one(vault: Vault, use: VolumeUse, report: CompactionReport) -> None:
    """Replace one volume by copies of its live records, holding its append lock throughout
    (a volume another process is appending to is left alone)."""
    volumes = vault.blobs.volumes(use.tier)
    volumes.retire(use.id)
    fd = os.open(use.path, os.O_RDONLY)
    try:
        if not lock_exclusive(fd):
            return
        if os.fstat(fd).st_mode & stat.S_IWUSR:
            os.fchmod(fd, file_modes.READ_ONLY_MODE)
        _replace(vault, use, report)
    finally:
        os.close(fd)


def _replace(vault: Vault, use: VolumeUse, report: CompactionReport) -> None:
    records = _live_records(vault, use.id)
    volumes = vault.blobs.volumes(use.tier)
    moved: dict[int, Location] = {}
    copies: dict[int, bytes] = {}
    for offset, record in sorted(records.items()):
        header, sealed = vault.blobs.read_record(use.tier, record.location)
        if header.kind == KIND_CHUNK:
            chunk = vault.blobs.read_chunk(use.tier, record.location)
            kept = [m for m in chunk.members() if (m.kind, m.sha256) in record.members]
            if len(kept) != len(chunk.members()):
                moved[offset] = _repack(vault, use.tier, kept)
                report.chunks_repacked += 1
                continue
        moved[offset] = volumes.append(sealed)
        copies[offset] = sealed
        report.records_copied += 1
    vault.blobs.sync()
    for offset, sealed in copies.items():
        if volumes.read(moved[offset]) != sealed:
            raise IntegrityError(f"a record copied out of volume {use.id} does not read back "
                                 "the same: compaction stopped before switching.")
    for offset, record in records.items():
        for kind, sha in record.members:
            vault.blobs.read(use.tier, moved[offset], kind, sha)
    with vault.engine.begin() as conn:
        for offset, location in moved.items():
            for table in (schema.messages, schema.parts):
                conn.execute(update(table).where(table.c.volume_id == use.id,
                                                 table.c.offset == offset)
                             .values(volume_id=location.volume, offset=location.offset,
                                     length=location.length))
    vault.blobs.chunks.forget(use.id)
    _unlink(use.path)
    report.volumes.append(use.id)
    report.bytes_before += use.size
    report.bytes_after += sum(loc.length for loc in moved.values())


def _live_records(vault: Vault, volume_id: int) -> dict[int, _Record]:
    m, p = schema.messages, schema.parts
    records: dict[int, _Record] = {}
    with vault.engine.connect() as conn:
        for kind, table, key in ((KIND_MESSAGE, m, m.c.sha256), (KIND_PART, p, p.c.sha256)):
            for row in conn.execute(select(key, table.c.offset, table.c.length)
                                    .where(table.c.volume_id == volume_id)):
                record = records.setdefault(
                    row.offset, _Record(Location(volume_id, row.offset, row.length)))
                record.members.add((kind, bytes.fromhex(row.sha256)))
    return records


def _repack(vault: Vault, tier: str, members: list[chunks.Member]) -> Location:
    plain = chunks.pack(members)
    params = zstandard.ZstdCompressionParameters.from_level(
        vault.settings.tiers.deep_level, source_size=len(plain), enable_ldm=True)
    compressed = zstandard.ZstdCompressor(compression_params=params).compress(plain)
    return vault.blobs.write_chunk(tier, plain, compressed)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
