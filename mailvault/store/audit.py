"""The one audit writer: an append-only log whose entries are chained by a keyed hash.

Each entry's hash covers its own fields and the previous entry's hash, so editing, inserting
or removing an entry breaks the chain from that point on. The hash is an HMAC-SHA256 with the
vault's chain key, which the keyring keeps sealed outside the catalog: someone who can edit the
catalog but does not hold the keys cannot write a chain that verifies, not even by re-hashing
every entry. Entries written before a vault had a chain key (by older versions) carry a plain
SHA-256 of the same fields; the key-introduction entry (action ``audit-key``) marks where the
keyed chain starts, and since it chains to the entry before it, the old entries stay covered.

Cutting entries off the end leaves a chain that is intact in itself; the head file beside the
catalog (``audit_head.py``) and a head kept outside the archive (``mailvault audit head``,
checked with ``audit verify --head``) catch that.

Ingest entries list the SHA-256 of every message their batch archived, and disposal entries
the hashes they removed, so the log can say which messages must still be in the catalog.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, String, Text, bindparam, func, literal, select, update

from mailvault.errors import IntegrityError, VaultError
from mailvault.store import database, schema
from mailvault.store.audit_head import Head, read_head_file
from mailvault.store.catalog import from_epoch, now

GENESIS = "0" * 64
KEY_ACTION = "audit-key"
# The vault's engine carries its Chain as this execution option, so that every connection
# the vault hands out can write and check entries without the key passing through callers.
CHAIN_OPTION = "mailvault_audit_chain"


@dataclass(frozen=True)
class Chain:
    """What a vault lends its audit log: the chain key and the path of the head file."""

    key: bytes
    head_file: Path

    def fingerprint(self) -> str:
        """A name for the key that reveals nothing of it (for the key-introduction entry)."""
        return hmac.new(self.key, b"mailvault audit chain key", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    seq: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor,
                "action": self.action, "detail": self.detail, "prev_hash": self.prev_hash,
                "hash": self.hash}


def public_hash(prev_hash: str, seq: int, at: int, actor: str, action: str,
                detail: str) -> str:
    """The hash of an entry written before the vault had a chain key (plain SHA-256)."""
    return hashlib.sha256(_body(prev_hash, seq, at, actor, action, detail)).hexdigest()


def keyed_hash(key: bytes, prev_hash: str, seq: int, at: int, actor: str, action: str,
               detail: str) -> str:
    """The hash of an entry: HMAC-SHA256 with the chain key over the same fields."""
    return hmac.new(key, _body(prev_hash, seq, at, actor, action, detail),
                    hashlib.sha256).hexdigest()


def _body(prev_hash: str, seq: int, at: int, actor: str, action: str, detail: str) -> bytes:
    return json.dumps([prev_hash, seq, at, actor, action, detail], ensure_ascii=False,
                      separators=(",", ":")).encode()


def batch_digest(hashes: Iterable[str]) -> str:
    """SHA-256 over the sorted message hashes of a batch (32 bytes each, concatenated)."""
    return hashlib.sha256(b"".join(bytes.fromhex(h) for h in sorted(hashes))).hexdigest()


def chain_of(conn: Connection) -> Chain:
    """The chain of the vault this connection belongs to."""
    chain = conn.get_execution_options().get(CHAIN_OPTION)
    if not isinstance(chain, Chain):
        raise VaultError("the audit log can only be written and checked through an open vault.")
    return chain


def record(conn: Connection, actor: str, action: str, detail: dict[str, Any],
           case: int | None = None) -> str:
    """Append an entry inside the caller's transaction; returns its hash.

    The writer lock is taken first (SQLite's insert takes it by itself; on PostgreSQL
    ``serialize_writers`` does), and the entry's number is the newest one's plus one, read in
    the insert itself: no other writer can slip an entry in between, two entries never chain
    to the same one, and a rolled-back entry leaves no gap (a PostgreSQL sequence would).
    ``case`` (a case id) puts
    the entry in that case's chain of custody: the detail names it (so the hash covers the
    reference) and ``case_audit`` finds it without reading the whole log.
    """
    chain = chain_of(conn)
    at = now()
    if case is not None:
        detail = {**detail, "case": case}
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    database.serialize_writers(conn)
    seq = int(conn.execute(_INSERT, {"at": at, "actor": actor, "action": action,
                                     "detail": text}).scalar_one())
    prev = conn.execute(_PREVIOUS_HASH, {"seq": seq}).scalar()
    prev_hash = prev or GENESIS
    digest = keyed_hash(chain.key, prev_hash, seq, at, actor, action, text)
    conn.execute(_SEAL, {"entry": seq, "prev": prev_hash, "digest": digest})
    if case is not None:
        conn.execute(schema.case_audit.insert().values(case_id=case, seq=seq))
    return digest


# The three statements of an entry, built once: every search writes an entry, and building
# them anew cost more CPU than running them.
_log = schema.audit_log
_INSERT = (_log.insert().from_select(
    ["seq", "at", "actor", "action", "detail", "prev_hash", "hash"],
    select(func.coalesce(func.max(_log.c.seq), 0) + 1, bindparam("at", type_=schema.Int64),
           bindparam("actor", type_=Text), bindparam("action", type_=String),
           bindparam("detail", type_=Text), literal(""), literal("")))
    .returning(_log.c.seq))
_PREVIOUS_HASH = (select(schema.audit_log.c.hash)
                  .where(schema.audit_log.c.seq < bindparam("seq"))
                  .order_by(schema.audit_log.c.seq.desc()).limit(1))
_SEAL = (update(schema.audit_log).where(schema.audit_log.c.seq == bindparam("entry"))
         .values(prev_hash=bindparam("prev"), hash=bindparam("digest")))


def of_case(conn: Connection, case: int) -> Iterator[AuditEntry]:
    """Every entry that touched a case, oldest first (its chain of custody)."""
    query = (select(schema.audit_log)
             .join(schema.case_audit, schema.case_audit.c.seq == schema.audit_log.c.seq)
             .where(schema.case_audit.c.case_id == case).order_by(schema.audit_log.c.seq))
    for row in conn.execute(query):
        yield _entry(row)


def entries(conn: Connection, since: datetime | None = None) -> Iterator[AuditEntry]:
    """Entries in order, optionally from a time on."""
    query = select(schema.audit_log).order_by(schema.audit_log.c.seq)
    if since is not None:
        query = query.where(schema.audit_log.c.at >= int(since.timestamp()))
    for row in conn.execute(query):
        yield _entry(row)


def last(conn: Connection, action: str) -> AuditEntry | None:
    """The newest entry of one action (one index lookup)."""
    entries = list(newest_first(conn, action, limit=1))
    return entries[0] if entries else None


def newest_first(conn: Connection, action: str, limit: int | None = None
                 ) -> Iterator[AuditEntry]:
    """The entries of one action, newest first (read through the action index)."""
    query = (select(schema.audit_log).where(schema.audit_log.c.action == action)
             .order_by(schema.audit_log.c.seq.desc()))
    for row in conn.execute(query if limit is None else query.limit(limit)):
        yield _entry(row)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(seq=row.seq, at=from_epoch(row.at) or datetime.now(UTC), actor=row.actor,
                      action=row.action, detail=json.loads(row.detail),
                      prev_hash=row.prev_hash, hash=row.hash)


def head(conn: Connection) -> tuple[int, str]:
    """(seq, hash) of the newest entry; (0, GENESIS) for an empty log."""
    row = conn.execute(select(schema.audit_log.c.seq, schema.audit_log.c.hash)
                       .order_by(schema.audit_log.c.seq.desc()).limit(1)).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def verify(conn: Connection, given: Head | None = None) -> list[str]:
    """Every break in the chain, as sentences; an empty list means the log is intact.

    Also checked: that the keyed chain starts with a key-introduction entry, that the log
    still holds the entry the head file names (and ``given``, a head kept elsewhere), and that
    each ingest entry's digest matches its hashes."""
    chain = chain_of(conn)
    problems = []
    prev_hash = GENESIS
    prev_seq = 0
    keyed = False
    rows = conn.execute(select(schema.audit_log).order_by(schema.audit_log.c.seq))
    for row in rows:
        if row.seq != prev_seq + 1:
            problems.append(f"audit entries {prev_seq + 1} to {row.seq - 1} are missing.")
        if row.prev_hash != prev_hash:
            problems.append(f"audit entry {row.seq} does not follow the entry before it.")
        keyed = keyed or row.action == KEY_ACTION
        fields = (row.prev_hash, row.seq, row.at, row.actor, row.action, row.detail)
        expected = keyed_hash(chain.key, *fields) if keyed else public_hash(*fields)
        if row.hash != expected:
            problems.append(f"audit entry {row.seq} was altered after it was written.")
        elif row.action == "ingest" and not _digest_matches(row.detail):
            problems.append(f"audit entry {row.seq} lists hashes its digest does not match.")
        prev_hash, prev_seq = row.hash, row.seq
    if not keyed:
        problems.append("the audit log has no key-introduction entry: it was rewritten by "
                        "someone without the vault's chain key.")
    try:
        anchored = read_head_file(chain.head_file, chain.key)
    except IntegrityError as exc:
        problems.append(str(exc))
    else:
        problems.extend(_head_problems(conn, anchored, prev_seq, "the head file"))
    if given is not None:
        problems.extend(_head_problems(conn, given, prev_seq, "the head given"))
    return problems


def _digest_matches(detail_text: str) -> bool:
    detail = json.loads(detail_text)
    hashes = detail.get("sha256")
    return hashes is None or batch_digest(hashes) == detail.get("sha256_digest")


def _head_problems(conn: Connection, anchored: Head, last_seq: int, source: str) -> list[str]:
    """Whether the log still holds the entry a head names, with that hash."""
    if anchored.seq == 0:
        return []
    found = conn.execute(select(schema.audit_log.c.hash)
                         .where(schema.audit_log.c.seq == anchored.seq)).scalar()
    if found is None and anchored.seq > last_seq:
        return [f"the audit log ends at entry {last_seq}, but {source} names entry "
                f"{anchored.seq}: its last entries were deleted."]
    if found is None:
        return [f"audit entry {anchored.seq}, which {source} names, was deleted."]
    if found != anchored.hash:
        return [f"audit entry {anchored.seq} does not have the hash {source} names: the log "
                "was rewritten."]
    return []
