"""The catalog: what is archived, where its bytes are, where each copy came from.

Other modules talk to it through these functions and the records below, never through its
tables directly, so that a PostgreSQL catalog later is a change of engine, not of callers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from mailvault.errors import NotFoundError, StorageFullError, VaultError
from mailvault.fsnames import exact_json, shown
from mailvault.records import MessageFields, Provenance
from mailvault.store import database, schema
from mailvault.store.database import CATALOG_FULL
from mailvault.store.volumes import Location

WATERMARK = "indexed_through"
# The last reindex log entry handed out, and the last one pruned (``reindex_log``).
REINDEX_SEQ = "reindex_seq"
REINDEX_FLOOR = "reindex_floor"


@dataclass
class NewMessage:
    """Everything the catalog records about a message archived for the first time."""

    sha256: str
    size: int
    stored_bytes: int
    tier: str
    location: Location
    folder: str
    fields: MessageFields
    addresses: list[tuple[str, str, str]]
    parts: list[tuple[str, Location | None, int, bool]] = field(default_factory=list)


@dataclass(frozen=True)
class MessageRow:
    """A message as listed: the fields of ``search --json``, and where its bytes are."""

    id: int
    sha256: str
    date: datetime | None
    from_addr: str
    to_addrs: str
    cc_addrs: str
    subject: str
    folder: str
    tier: str
    size: int
    stored_bytes: int
    attachments: int
    defects: list[str]
    location: Location

    def to_json(self) -> dict[str, Any]:
        """The contract of ``search --json``."""
        return {
            "id": self.id,
            "sha256": self.sha256,
            "date": self.date.isoformat() if self.date else None,
            "from": self.from_addr,
            "to": self.to_addrs,
            "cc": self.cc_addrs,
            "subject": self.subject,
            "folder": self.folder,
            "tier": self.tier,
            "size": self.size,
            "attachments": self.attachments,
            "defects": self.defects,
        }


# Less free space than this beside the catalog and no transaction fits (its WAL frames, the
# checkpoint's pages): the catalog is as good as unwritable.
LOW_SPACE_BYTES = 256 * 1024


def space_problem(folder: Path) -> str:
    """``CATALOG_FULL`` when the disk holding the catalog in ``folder`` (the vault's) has
    (almost) no space left, else "". Asked without writing anything, so it answers on a full
    disk."""
    try:
        info = os.statvfs(folder)
    except OSError:
        return ""
    return CATALOG_FULL if info.f_bavail * info.f_frsize < LOW_SPACE_BYTES else ""


def translate(exc: OperationalError) -> Exception:
    """A database failure as one of our errors (disk full is the one callers retry)."""
    if database.is_disk_full(exc.orig):
        return StorageFullError(CATALOG_FULL)
    return VaultError(f"the catalog cannot be written: {exc.orig}.")


def now() -> int:
    return int(time.time())


def epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def from_epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


# -- volumes ---------------------------------------------------------------------------------

def new_volume(engine: Engine, tier: str, folder: Path) -> int:
    """Register a new volume file and return its id."""
    with engine.begin() as conn:
        result = conn.execute(
            insert(schema.volumes).values(tier=tier, folder=str(folder), created_at=now())
        )
        assert result.inserted_primary_key is not None
        return int(result.inserted_primary_key[0])


def volume_folders(engine: Engine) -> dict[int, Path]:
    """Every volume id and the folder that holds it."""
    with engine.connect() as conn:
        rows = conn.execute(select(schema.volumes.c.id, schema.volumes.c.folder))
        return {row.id: Path(row.folder) for row in rows}


def volume_places(engine: Engine) -> dict[int, str]:
    """Every volume id and where it is, as the catalog says: a local folder, or the URL of
    the object that holds it (store/objects.py)."""
    with engine.connect() as conn:
        rows = conn.execute(select(schema.volumes.c.id, schema.volumes.c.folder))
        return {row.id: row.folder for row in rows}


def set_volume_place(engine: Engine, volume_id: int, place: str) -> None:
    """Record where a volume is now (its object, once uploaded)."""
    with engine.begin() as conn:
        conn.execute(update(schema.volumes).where(schema.volumes.c.id == volume_id)
                     .values(folder=place))


def last_volume(engine: Engine, tier: str) -> int | None:
    """The newest volume of a tier (the one still open for appends, unless sealed)."""
    with engine.connect() as conn:
        return conn.execute(
            select(func.max(schema.volumes.c.id)).where(schema.volumes.c.tier == tier)
        ).scalar()


# -- archiving -------------------------------------------------------------------------------

def known(conn: Connection, hashes: Iterable[str]) -> dict[str, int]:
    """Of these message hashes, those already archived, with their ids."""
    found: dict[str, int] = {}
    chunk: list[str] = []
    for digest in hashes:
        chunk.append(digest)
        if len(chunk) == 500:
            found.update(_known_chunk(conn, chunk))
            chunk = []
    if chunk:
        found.update(_known_chunk(conn, chunk))
    return found


def _known_chunk(conn: Connection, chunk: list[str]) -> dict[str, int]:
    rows = conn.execute(
        select(schema.messages.c.sha256, schema.messages.c.id).where(
            schema.messages.c.sha256.in_(chunk)
        )
    )
    return {row.sha256: row.id for row in rows}


def known_parts(conn: Connection, hashes: Iterable[str]) -> set[str]:
    """Of these part hashes, those already stored."""
    wanted = list(set(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = conn.execute(select(schema.parts.c.sha256).where(schema.parts.c.sha256.in_(chunk)))
        found.update(row.sha256 for row in rows)
    return found


def add_messages(conn: Connection, batch: Sequence[NewMessage]) -> dict[str, int]:
    """Insert new messages with their addresses, attachments and parts; returns their ids.

    One executemany per table, straight to the driver: building a statement per row costs
    more than the rest of ingestion.
    """
    if not batch:
        return {}
    # Ids must commit in the order they are handed out, or the index watermark could pass
    # an id whose batch commits later (SQLite's single writer gives that by itself).
    database.serialize_writers(conn)
    stamp = now()
    m = schema.messages
    _bulk_insert(conn, m, ("sha256", "size", "stored_bytes", "tier", "volume_id", "offset",
                           "length", "date", "archived_at", "subject", "from_addr", "to_addrs",
                           "cc_addrs", "message_id", "folder", "attachments", "defects"), [
        (msg.sha256, msg.size, msg.stored_bytes, msg.tier, msg.location.volume,
         msg.location.offset, msg.location.length, epoch(msg.fields.date), stamp,
         msg.fields.subject, msg.fields.from_addr, msg.fields.to_addrs, msg.fields.cc_addrs,
         msg.fields.message_id, msg.folder, len(msg.fields.attachments),
         json.dumps(msg.fields.defects)) for msg in batch])
    ids = known(conn, (msg.sha256 for msg in batch))
    _bulk_insert(conn, schema.addresses, ("message_id", "role", "address", "name"),
                 [(ids[msg.sha256], role, addr, name)
                  for msg in batch for role, addr, name in msg.addresses])
    _bulk_insert(conn, schema.attachments, ("message_id", "filename", "content_type", "size"),
                 [(ids[msg.sha256], name, ctype, size)
                  for msg in batch for name, ctype, size in msg.fields.attachments])
    _add_parts(conn, batch, ids)
    return ids


def _bulk_insert(conn: Connection, table: Table, columns: tuple[str, ...],
                 rows: list[tuple[Any, ...]]) -> None:
    """executemany of rows given in ``columns`` order through the DBAPI cursor (statement
    compiled once for this database's dialect, so the SQL stays portable): as tuples for a
    driver with positional parameters (sqlite3's ``?``), as dicts for one with named ones
    (psycopg's ``%(name)s``)."""
    if not rows:
        return
    compiled = insert(table).compile(dialect=conn.dialect,
                                     column_keys=list(columns))
    params: list[Any]
    if compiled.positional:
        order = compiled.positiontup or []
        position = {name: i for i, name in enumerate(columns)}
        params = rows if order == list(columns) else [
            tuple(row[position[name]] for name in order) for row in rows]
    else:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(str(compiled), params)
    finally:
        cursor.close()


def _add_parts(conn: Connection, batch: Sequence[NewMessage], ids: dict[str, int]) -> None:
    new_parts = {}
    links = set()
    for msg in batch:
        for digest, location, size, is_new in msg.parts:
            if is_new and location is not None and digest not in new_parts:
                new_parts[digest] = {"sha256": digest, "tier": msg.tier,
                                     "volume_id": location.volume, "offset": location.offset,
                                     "length": location.length, "size": size, "refs": 0}
            links.add((ids[msg.sha256], digest))
    if new_parts:
        conn.execute(insert(schema.parts), list(new_parts.values()))
    if links:
        conn.execute(insert(schema.message_parts),
                     [{"message_id": m, "part_sha256": p} for m, p in links])
        counts: dict[str, int] = {}
        for _, digest in links:
            counts[digest] = counts.get(digest, 0) + 1
        conn.execute(update(schema.parts).where(schema.parts.c.sha256 == bindparam("d"))
                     .values(refs=schema.parts.c.refs + bindparam("n")),
                     [{"d": d, "n": n} for d, n in counts.items()])


def add_provenances(conn: Connection, arrivals: Sequence[tuple[int, Provenance]]) -> set[int]:
    """Record arrivals of messages; returns the ids of messages that gained a new arrival.

    An arrival already recorded (same message, same provenance key) is not recorded twice.
    """
    if not arrivals:
        return set()
    keyed = {(message_id, prov.key()): (message_id, prov) for message_id, prov in arrivals}
    message_ids = list({m for m, _ in keyed})
    existing: set[tuple[int, str]] = set()
    for start in range(0, len(message_ids), 500):
        rows = conn.execute(select(schema.provenance.c.message_id, schema.provenance.c.key)
                            .where(schema.provenance.c.message_id.in_(
                                message_ids[start:start + 500])))
        existing.update((r.message_id, r.key) for r in rows)
    fresh = [(key, m, prov) for key, (m, prov) in keyed.items() if key not in existing]
    if fresh:
        stamp = now()
        _bulk_insert(conn, schema.provenance, ("message_id", "key", "kind", "source", "folder",
                                                "account", "received_at", "data"), [
            (m, key[1], prov.kind, shown(prov.source), _shown(prov.folder),
             _shown(prov.account), epoch(prov.received_at) if prov.received_at else stamp,
             exact_json(prov.to_stored_json())) for key, m, prov in fresh])
        _add_envelope_addresses(conn, [(m, prov) for _, m, prov in fresh])
    return {m for _, m, _ in fresh}


def _add_envelope_addresses(conn: Connection, arrivals: list[tuple[int, Provenance]]) -> None:
    """Every arrival's envelope sender and recipients become address rows of its message
    (each once), so that holds, own-mail access and person reports find a Bcc or journal
    recipient whichever copy of the message brought them."""
    wanted: dict[tuple[int, str, str], None] = {}
    for message_id, prov in arrivals:
        for rcpt in prov.envelope_to:
            wanted.setdefault((message_id, "envelope-to", shown(rcpt.lower())), None)
        if prov.envelope_from:
            wanted.setdefault((message_id, "envelope-from",
                               shown(prov.envelope_from.lower())), None)
    if not wanted:
        return
    a = schema.addresses
    ids = sorted({m for m, _, _ in wanted})
    for start in range(0, len(ids), 500):
        rows = conn.execute(select(a.c.message_id, a.c.role, a.c.address).where(
            a.c.message_id.in_(ids[start:start + 500]),
            a.c.role.in_(("envelope-to", "envelope-from"))))
        for r in rows:
            wanted.pop((r.message_id, r.role, r.address), None)
    _bulk_insert(conn, a, ("message_id", "role", "address", "name"),
                 [(m, role, address, "") for m, role, address in wanted])


def record_failure(conn: Connection, prov: Provenance, reason: str) -> None:
    """Remember an item that could not be archived, so that it can be reported and retried.
    An earlier unsettled failure of the same item is settled in favour of this one (a retry
    that failed again, say in serve's archiver): each problem is listed once."""
    if prov.item is not None:
        f = schema.failures
        conn.execute(update(f).where(
            f.c.kind == prov.kind, f.c.source == shown(prov.source),
            f.c.item == _shown(prov.item), f.c.resolved.is_(False)).values(resolved=True))
    conn.execute(insert(schema.failures).values(
        at=now(), kind=prov.kind, source=shown(prov.source), item=_shown(prov.item),
        reason=shown(reason), provenance=exact_json(prov.to_json()), resolved=False,
    ))


def _shown(text: str | None) -> str | None:
    """A provenance value for a catalog column: file names escaped (fsnames.shown); the
    exact value is in the row's JSON."""
    return None if text is None else shown(text)


INDEX_FAILURE = "index"


def index_failure_provenance(message_id: int, sha256: str) -> Provenance:
    """How a message the index would not take is named among the failures."""
    return Provenance(kind=INDEX_FAILURE, source=f"message {message_id}", item=sha256)


def record_index_failures(conn: Connection, rejected: dict[int, tuple[str, str]]) -> None:
    """Remember archived messages the index would not take (id -> (sha256, reason)): they
    are kept and readable, only not searchable, and `status` lists them. A message that
    fails again (every reindex tries it) is not recorded twice."""
    f = schema.failures
    for message_id, (sha256, reason) in rejected.items():
        prov = index_failure_provenance(message_id, sha256)
        already = conn.execute(select(f.c.id).where(
            f.c.kind == prov.kind, f.c.source == prov.source, f.c.item == prov.item,
            f.c.resolved.is_(False)).limit(1)).first()
        if already is None:
            record_failure(conn, prov, f"message {message_id} could not be indexed (it is "
                           f"archived, but not searchable): {reason}")


def last_failure_id(conn: Connection) -> int:
    """The id of the newest recorded failure (0 when there is none)."""
    return int(conn.execute(select(func.max(schema.failures.c.id))).scalar() or 0)


def settle_failures(conn: Connection, places: Iterable[Provenance], up_to: int) -> int:
    """Mark resolved the failures (up to id ``up_to``) recorded for a whole place: a folder
    that could not be listed, a file not read to the end, that has now been read whole.
    ``places`` are provenances without an item; returns how many were settled."""
    f = schema.failures
    keys = {(p.kind, shown(p.source), p.folder or "") for p in places}
    if not keys:
        return 0
    rows = conn.execute(select(f.c.id, f.c.kind, f.c.source, f.c.provenance).where(
        f.c.resolved.is_(False), f.c.item.is_(None), f.c.id <= up_to)).all()
    settled = [row.id for row in rows
               if (row.kind, row.source, json.loads(row.provenance).get("folder") or "") in keys]
    if settled:
        conn.execute(update(f).where(f.c.id.in_(settled)).values(resolved=True))
    return len(settled)


def queue_reindex(conn: Connection, message_ids: Iterable[int]) -> None:
    """Log messages whose index document must be rebuilt (a new folder or source, say): every
    index applies the entry after those it has applied."""
    ids = sorted(set(message_ids))
    if not ids:
        return
    # Entries must commit in the order they are numbered, or an index could apply a later
    # one and pass over an earlier one still uncommitted (SQLite's single writer gives that
    # by itself).
    database.serialize_writers(conn)
    last = _index_state(conn, REINDEX_SEQ)
    conn.execute(schema.reindex_log.insert(), [
        {"seq": last + n, "message_id": message_id} for n, message_id in enumerate(ids, 1)])
    _set_index_state(conn, REINDEX_SEQ, last + len(ids))


# -- reading ---------------------------------------------------------------------------------

_ROW_COLUMNS = (
    schema.messages.c.id, schema.messages.c.sha256, schema.messages.c.date,
    schema.messages.c.from_addr, schema.messages.c.to_addrs, schema.messages.c.cc_addrs,
    schema.messages.c.subject, schema.messages.c.folder, schema.messages.c.tier,
    schema.messages.c.size, schema.messages.c.stored_bytes, schema.messages.c.attachments,
    schema.messages.c.defects, schema.messages.c.volume_id, schema.messages.c.offset,
    schema.messages.c.length,
)


def _row(row: Any) -> MessageRow:
    # By position, in the order of _ROW_COLUMNS: a results page converts 50 rows per request,
    # and reading a Row's fields by name costs three times as much.
    (id_, sha256, date, from_addr, to_addrs, cc_addrs, subject, folder, tier, size,
     stored_bytes, attachments, defects, volume_id, offset, length) = row
    return MessageRow(
        id=id_, sha256=sha256, date=from_epoch(date), from_addr=from_addr,
        to_addrs=to_addrs, cc_addrs=cc_addrs, subject=subject, folder=folder, tier=tier,
        size=size, stored_bytes=stored_bytes, attachments=attachments,
        defects=json.loads(defects) if defects and defects != "[]" else [],
        location=Location(volume_id, offset, length),
    )


# Built once: the ids go in as one expanding parameter, so a call neither builds nor
# coerces a statement of its own.
_BY_IDS = select(*_ROW_COLUMNS).where(schema.messages.c.id.in_(bindparam("ids",
                                                                        expanding=True)))


def messages_by_id(conn: Connection, ids: Sequence[int]) -> list[MessageRow]:
    """Messages by id, in the order asked for (missing ids are skipped)."""
    found: dict[int, MessageRow] = {}
    for start in range(0, len(ids), 500):
        found.update((r.id, r) for r in map(_row, conn.execute(
            _BY_IDS, {"ids": list(ids[start:start + 500])})))
    return [found[i] for i in ids if i in found]


def resolve(conn: Connection, ref: str) -> MessageRow:
    """A message by id (digits) or by a SHA-256 prefix of at least 8 hex digits."""
    ref = ref.strip().lower()
    # ASCII digits only: str.isdigit() also takes "²" and other digits int() refuses.
    if ref.isascii() and ref.isdigit() and len(ref) < 16:
        by_id = messages_by_id(conn, [int(ref)])
        if by_id:
            return by_id[0]
        raise NotFoundError(f"no message has id {ref}.")
    if len(ref) < 8 or any(c not in "0123456789abcdef" for c in ref):
        raise NotFoundError(f"{ref!r} is neither a message id nor a SHA-256 prefix of 8+ digits.")
    rows = conn.execute(select(*_ROW_COLUMNS).where(
        schema.messages.c.sha256.startswith(ref)).limit(2)).all()
    if not rows:
        raise NotFoundError(f"no message's SHA-256 starts with {ref}.")
    if len(rows) > 1:
        raise NotFoundError(f"more than one message's SHA-256 starts with {ref}: give more digits.")
    return _row(rows[0])


def party_message_ids(conn: Connection, addresses: Sequence[str]) -> set[int]:
    """Every message one of these (lower-cased) addresses is party to: sender, a header
    recipient, or an envelope sender or recipient (Bcc and journal recipients included)."""
    if not addresses:
        return set()
    a = schema.addresses
    return set(conn.execute(select(a.c.message_id).distinct()
                            .where(a.c.address.in_(list(addresses)))).scalars())


def is_party(conn: Connection, message_id: int, addresses: Sequence[str]) -> bool:
    """Whether one of these (lower-cased) addresses is party to the message."""
    if not addresses:
        return False
    a = schema.addresses
    return conn.execute(select(a.c.message_id).where(
        a.c.message_id == message_id, a.c.address.in_(list(addresses))).limit(1)).first() \
        is not None


def iter_messages(conn: Connection, after_id: int = 0, batch: int = 1000) -> Iterator[MessageRow]:
    """Every message in id order, from after ``after_id``, read in batches."""
    while True:
        rows = list(conn.execute(select(*_ROW_COLUMNS).where(schema.messages.c.id > after_id)
                                 .order_by(schema.messages.c.id).limit(batch)))
        if not rows:
            return
        for r in rows:
            yield _row(r)
        after_id = rows[-1].id


def provenances(conn: Connection, message_id: int) -> list[Provenance]:
    """Every recorded arrival of a message, oldest first."""
    rows = conn.execute(select(schema.provenance.c.data)
                        .where(schema.provenance.c.message_id == message_id)
                        .order_by(schema.provenance.c.id))
    return [Provenance.from_json(json.loads(r.data)) for r in rows]


def message_parts(conn: Connection, message_id: int) -> dict[str, tuple[str, Location]]:
    """The parts a message refers to: hash -> (tier, location)."""
    rows = conn.execute(
        select(schema.parts.c.sha256, schema.parts.c.tier, schema.parts.c.volume_id,
               schema.parts.c.offset, schema.parts.c.length)
        .join(schema.message_parts, schema.message_parts.c.part_sha256 == schema.parts.c.sha256)
        .where(schema.message_parts.c.message_id == message_id)
    )
    return {r.sha256: (r.tier, Location(r.volume_id, r.offset, r.length)) for r in rows}


def iter_parts(conn: Connection) -> Iterator[tuple[str, str, Location, int]]:
    """Every stored part: (hash, tier, location, size)."""
    rows = conn.execute(select(schema.parts.c.sha256, schema.parts.c.tier,
                               schema.parts.c.volume_id, schema.parts.c.offset,
                               schema.parts.c.length, schema.parts.c.size))
    for r in rows:
        yield r.sha256, r.tier, Location(r.volume_id, r.offset, r.length), r.size


def failures(conn: Connection, unresolved_only: bool = True) -> list[dict[str, Any]]:
    """Recorded failures, newest first."""
    query = select(schema.failures).order_by(schema.failures.c.id.desc())
    if unresolved_only:
        query = query.where(schema.failures.c.resolved.is_(False))
    return [dict(r._mapping) for r in conn.execute(query)]


def failure(conn: Connection, failure_id: int) -> dict[str, Any] | None:
    """One recorded failure by id (resolved or not), or None."""
    row = conn.execute(select(schema.failures)
                       .where(schema.failures.c.id == failure_id)).first()
    return None if row is None else dict(row._mapping)


def resolve_failure(conn: Connection, failure_id: int) -> None:
    """Mark one failure resolved (what it named is gone, or a newer record replaces it)."""
    conn.execute(update(schema.failures).where(schema.failures.c.id == failure_id)
                 .values(resolved=True))


def newer_failure(conn: Connection, failure_id: int) -> int | None:
    """The id of an unresolved failure recorded after ``failure_id`` for the same thing
    (kind, source and item), if there is one: a second try that failed again."""
    f = schema.failures
    old = conn.execute(select(f.c.kind, f.c.source, f.c.item)
                       .where(f.c.id == failure_id)).first()
    if old is None:
        return None
    same_item = f.c.item.is_(None) if old.item is None else f.c.item == old.item
    found = conn.execute(select(func.max(f.c.id)).where(
        f.c.id > failure_id, f.c.kind == old.kind, f.c.source == old.source, same_item,
        f.c.resolved.is_(False))).scalar()
    return None if found is None else int(found)


def resolve_failures(conn: Connection, arrivals: Iterable[Provenance]) -> None:
    """Mark earlier failures of these items resolved (they have now been archived)."""
    pending = conn.execute(select(func.count()).select_from(schema.failures)
                           .where(schema.failures.c.resolved.is_(False))).scalar()
    if not pending:
        return
    items = [{"k": p.kind, "s": shown(p.source), "i": shown(p.item)} for p in arrivals
             if p.item is not None]
    if items:
        f = schema.failures
        conn.execute(update(f).where(f.c.kind == bindparam("k"), f.c.source == bindparam("s"),
                                     f.c.item == bindparam("i")).values(resolved=True), items)


# -- index bookkeeping -----------------------------------------------------------------------

def get_watermark(conn: Connection) -> int:
    """The highest message id whose index document is committed."""
    return _index_state(conn, WATERMARK)


def set_watermark(conn: Connection, value: int) -> None:
    _set_index_state(conn, WATERMARK, value)


def last_reindex_seq(conn: Connection) -> int:
    """The newest reindex log entry (0: none ever)."""
    return _index_state(conn, REINDEX_SEQ)


def reindex_floor(conn: Connection) -> int:
    """The newest entry pruned from the reindex log: an index that has not applied it missed
    changes nobody can name any more."""
    return _index_state(conn, REINDEX_FLOOR)


@dataclass(frozen=True)
class ReindexEntry:
    """One entry of the reindex log: the message whose document must be rebuilt."""

    seq: int
    message_id: int


def reindex_after(conn: Connection, seq: int, limit: int = 1000) -> list[ReindexEntry]:
    """The reindex log's entries after ``seq``, oldest first."""
    log = schema.reindex_log
    rows = conn.execute(select(log.c.seq, log.c.message_id).where(log.c.seq > seq)
                        .order_by(log.c.seq).limit(limit))
    return [ReindexEntry(int(r.seq), int(r.message_id)) for r in rows]


def count_reindex_after(conn: Connection, seq: int) -> int:
    """How many reindex log entries come after ``seq`` (what an index at ``seq`` has yet to
    apply)."""
    return int(conn.execute(select(func.count()).select_from(schema.reindex_log)
                            .where(schema.reindex_log.c.seq > seq)).scalar() or 0)


def index_cursor(conn: Connection, name: str) -> tuple[int, float] | None:
    """(seq, seen_at) of the index called ``name``, or None if it never recorded one."""
    row = conn.execute(select(schema.index_cursors.c.seq, schema.index_cursors.c.seen_at)
                       .where(schema.index_cursors.c.name == name)).first()
    return None if row is None else (int(row.seq), float(row.seen_at))


def record_index_cursor(conn: Connection, name: str, seq: int) -> None:
    """Record that the index called ``name`` has applied the reindex log through ``seq``."""
    database.upsert(conn, schema.index_cursors, ["name"],
                    {"name": name, "seq": seq, "seen_at": now()})


def prune_reindex_log(conn: Connection, seen_since: float) -> int:
    """Delete the entries that every index seen since ``seen_since`` has applied, and raise
    the floor to the last of them; returns the floor. An index not seen since then (a node
    gone for long) finds its cursor below the floor when it comes back, and rebuilds."""
    cursors = schema.index_cursors
    lowest = conn.execute(select(func.min(cursors.c.seq))
                          .where(cursors.c.seen_at >= seen_since)).scalar()
    floor = reindex_floor(conn)
    if lowest is None or int(lowest) <= floor:
        return floor
    conn.execute(schema.reindex_log.delete().where(schema.reindex_log.c.seq <= int(lowest)))
    _set_index_state(conn, REINDEX_FLOOR, int(lowest))
    return int(lowest)


def forget_reindex_log(conn: Connection) -> None:
    """Drop every entry of the reindex log and raise the floor to the newest: an index that
    has not applied them all rebuilds (a catalog copied without its log)."""
    conn.execute(schema.reindex_log.delete())
    if last_reindex_seq(conn) > reindex_floor(conn):
        _set_index_state(conn, REINDEX_FLOOR, last_reindex_seq(conn))


def _index_state(conn: Connection, name: str) -> int:
    value = conn.execute(select(schema.index_state.c.value)
                         .where(schema.index_state.c.name == name)).scalar()
    return int(value or 0)


def _set_index_state(conn: Connection, name: str, value: int) -> None:
    database.upsert(conn, schema.index_state, ["name"], {"name": name, "value": value})


def tiers_through(conn: Connection, through: int) -> dict[int, str]:
    """The tier of every message with an id up to ``through``."""
    rows = conn.execute(select(schema.messages.c.id, schema.messages.c.tier)
                        .where(schema.messages.c.id <= through))
    return {r.id: r.tier for r in rows}


def count_ids_between(conn: Connection, above: int, through: int) -> int:
    """How many messages have an id in (above, through]."""
    return int(conn.execute(select(func.count()).select_from(schema.messages).where(
        schema.messages.c.id > above, schema.messages.c.id <= through)).scalar() or 0)


def max_message_id(conn: Connection) -> int:
    """The newest message id (0 for an empty vault)."""
    return int(conn.execute(select(func.max(schema.messages.c.id))).scalar() or 0)


def arrivals_of(conn: Connection, message_ids: Sequence[int]) -> dict[int, list[Provenance]]:
    """Every recorded arrival of each of these messages."""
    out: dict[int, list[Provenance]] = {m: [] for m in message_ids}
    for start in range(0, len(message_ids), 500):
        rows = conn.execute(select(schema.provenance.c.message_id, schema.provenance.c.data)
                            .where(schema.provenance.c.message_id.in_(
                                message_ids[start:start + 500]))
                            .order_by(schema.provenance.c.id))
        for r in rows:
            out[r.message_id].append(Provenance.from_json(json.loads(r.data)))
    return out


def messages_by_message_id(conn: Connection, message_ids: Iterable[str],
                           limit: int = 500) -> list[MessageRow]:
    """Messages whose Message-ID header is one of these (given without angle brackets)."""
    wanted = sorted({f"<{m.strip().strip('<>')}>" for m in message_ids if m.strip("<> ")})
    if not wanted:
        return []
    rows = conn.execute(select(*_ROW_COLUMNS).where(
        schema.messages.c.message_id.in_(wanted[:limit])).limit(limit))
    return [_row(r) for r in rows]


def message_id_header(conn: Connection, message_id: int) -> str:
    """The Message-ID header a message carries ('' when none)."""
    value = conn.execute(select(schema.messages.c.message_id)
                         .where(schema.messages.c.id == message_id)).scalar()
    return str(value or "")


def message_count(conn: Connection) -> int:
    """How many messages the catalog holds."""
    return int(conn.execute(select(func.count()).select_from(schema.messages)).scalar() or 0)


def volume_extents(conn: Connection) -> dict[int, tuple[str, Path, int]]:
    """Each volume as (tier, folder, length used): the end of the last record a message or a
    part points at. Bytes past it are not committed (an append not yet in the catalog)."""
    used: dict[int, int] = {}
    for table in (schema.messages, schema.parts):
        for row in conn.execute(select(table.c.volume_id,
                                       func.max(table.c.offset + table.c.length))
                                .group_by(table.c.volume_id)):
            used[row[0]] = max(used.get(row[0], 0), int(row[1] or 0))
    return {row.id: (row.tier, Path(row.folder), used.get(row.id, 0))
            for row in conn.execute(select(schema.volumes))}


def relocate_volumes(conn: Connection, folders: dict[str, Path]) -> None:
    """Point every volume of a tier at a new folder (a restored vault keeps its own)."""
    for tier, folder in folders.items():
        conn.execute(update(schema.volumes).where(schema.volumes.c.tier == tier)
                     .values(folder=str(folder)))


def addresses_of(conn: Connection, message_ids: Sequence[int]) -> dict[int, set[str]]:
    """Every address party to each of these messages (any role, envelope included)."""
    out: dict[int, set[str]] = {m: set() for m in message_ids}
    a = schema.addresses
    for start in range(0, len(message_ids), 500):
        rows = conn.execute(select(a.c.message_id, a.c.address).where(
            a.c.message_id.in_(message_ids[start:start + 500])))
        for r in rows:
            out[r.message_id].add(r.address)
    return out
