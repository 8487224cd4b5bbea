"""The checks ``mailvault verify`` adds to reading every blob back: volume files cut short,
catalog rows that no longer describe their message, an index that disagrees with the catalog,
retain-until dates changed behind the policies' back, messages the audit log says were
archived that the catalog lost. Each returns every problem it finds, as sentences."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    delete,
    exists,
    func,
    insert,
    select,
)

from mailvault.compliance import retention
from mailvault.ingest.prepare import catalog_fields
from mailvault.message import parse
from mailvault.search import query as q
from mailvault.store import schema
from mailvault.store.blobs import volume_path
from mailvault.store.catalog import MessageRow, epoch, from_epoch
from mailvault.store.objects import SCHEME

if TYPE_CHECKING:
    from mailvault.vault import Vault

_SHOWN = 10
_PAGE = 100
# What the audit log says is archived, built in a temporary table while it is read, so that
# memory stays flat however many messages the vault holds.
_claims = Table("archive_claims", MetaData(), Column("sha256", String(64), primary_key=True),
                Column("seq", schema.Int64, nullable=False), prefixes=["TEMPORARY"])


def volume_problems(vault: Vault) -> list[str]:
    """Volume files that are missing or shorter than what the catalog points into."""
    ends: dict[int, tuple[int, int]] = {}
    with vault.engine.connect() as conn:
        for table in (schema.messages, schema.parts):
            for row in conn.execute(select(table.c.volume_id, func.count(),
                                           func.max(table.c.offset + table.c.length))
                                    .group_by(table.c.volume_id)):
                count, end = ends.get(row[0], (0, 0))
                ends[row[0]] = (count + row[1], max(end, row[2]))
        # A volume uploaded to a bucket (store/objects.py) is checked by reading its blobs.
        folders = {row.id: Path(row.folder) for row in conn.execute(select(schema.volumes))
                   if not row.folder.startswith(SCHEME)}
        uploaded = {row.id for row in conn.execute(select(schema.volumes))
                    if row.folder.startswith(SCHEME)}
    problems = []
    for volume_id, (count, end) in sorted(ends.items()):
        if volume_id in uploaded:
            continue
        folder = folders.get(volume_id)
        if folder is None:
            problems.append(f"{count} blobs point into volume {volume_id}, which the catalog "
                            "does not list.")
            continue
        path = volume_path(folder, volume_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"volume {volume_id} ({path}) is missing: {count} blobs point "
                            "into it.")
            continue
        if size < end:
            problems.append(f"volume {volume_id} ({path}) was truncated: it holds {size} "
                            f"bytes, the catalog points up to byte {end}.")
    return problems


def row_problems(row: MessageRow, raw: bytes) -> list[str]:
    """Catalog fields of a message that its own bytes contradict (an edited catalog row)."""
    fields = catalog_fields(parse(raw))
    differ = []
    if row.size != len(raw):
        differ.append("size")
    for name, stored, actual in (("subject", row.subject, fields.subject),
                                 ("from", row.from_addr, fields.from_addr),
                                 ("to", row.to_addrs, fields.to_addrs),
                                 ("cc", row.cc_addrs, fields.cc_addrs)):
        if stored != actual:
            differ.append(name)
    if epoch(row.date) != epoch(fields.date):
        differ.append("date")
    if not differ:
        return []
    return [f"the catalog row of message {row.id} does not match its bytes "
            f"({', '.join(differ)}): it was edited."]


def index_problems(vault: Vault, tiers: dict[str, int]) -> list[str]:
    """Messages the index lacks or still has, and tiers it counts differently."""
    with vault.engine.connect() as conn:
        catalog_ids = set(conn.execute(select(schema.messages.c.id)).scalars())
    indexed = set(vault.index.ids(q.MatchAll()))
    problems = []
    missing = sorted(catalog_ids - indexed)
    if missing:
        problems.append(f"{len(missing)} messages have no index document (ids "
                        f"{_some(missing)}; run 'mailvault reindex').")
    extra = sorted(indexed - catalog_ids)
    if extra:
        problems.append(f"the index holds documents of {len(extra)} messages the catalog "
                        f"does not have (ids {_some(extra)}).")
    for tier, count in sorted(tiers.items()):
        in_index = vault.index.count(q.Term("tier", tier))
        if in_index != count:
            problems.append(f"the index puts {in_index} messages in the {tier} tier, the "
                            f"catalog {count}.")
    return problems


def retention_problems(vault: Vault) -> list[str]:
    """Stored retain-until dates that the policies do not give (changed by hand)."""
    with vault.engine.connect() as conn:
        stored = {row.message_id: (row.retain_until, row.policy_id)
                  for row in conn.execute(select(schema.retention))}
    if not stored:
        return []
    computed = retention.compute(vault, list(stored))
    altered = sorted(i for i, value in stored.items()
                     if i in computed and computed[i][0] != value[0])
    problems = []
    for message_id in altered[:_SHOWN]:
        stamp, should = from_epoch(stored[message_id][0]), from_epoch(computed[message_id][0])
        problems.append(f"the retain-until date of message {message_id} ({stamp:%Y-%m-%d}) is "
                        f"not what its policies give ({should:%Y-%m-%d}): it was changed "
                        "outside them, or the policies changed without a recompute.")
    if len(altered) > _SHOWN:
        problems.append(f"{len(altered) - _SHOWN} more messages have such a retain-until date.")
    return problems


def archive_problems(conn: Connection) -> list[str]:
    """Messages an ingest entry says were archived that the catalog no longer holds, and that
    no disposal entry (the only way a message may leave) removed since."""
    log = schema.audit_log
    # The driver may commit the table's creation at once and roll the rest back with the
    # caller's transaction: the table can outlive a call on a pooled connection, so it is
    # created only when missing and emptied first.
    _claims.create(conn, checkfirst=True)
    conn.execute(delete(_claims))
    after = 0
    while True:
        page = conn.execute(select(log.c.seq, log.c.action, log.c.detail)
                            .where(log.c.action.in_(("ingest", "dispose")), log.c.seq > after)
                            .order_by(log.c.seq).limit(_PAGE)).all()
        if not page:
            break
        for row in page:
            # Entries written before ingest entries carried hashes have none to add.
            hashes = json.loads(row.detail).get("sha256") or []
            if not hashes:
                continue
            conn.execute(delete(_claims).where(_claims.c.sha256.in_(hashes)))
            if row.action == "ingest":
                conn.execute(insert(_claims), [{"sha256": h, "seq": row.seq} for h in hashes])
        after = page[-1].seq
    lost = ~exists().where(schema.messages.c.sha256 == _claims.c.sha256)
    total = conn.execute(select(func.count()).select_from(_claims).where(lost)).scalar() or 0
    shown = conn.execute(select(_claims.c.sha256, _claims.c.seq).where(lost)
                         .order_by(_claims.c.seq, _claims.c.sha256).limit(_SHOWN)).all()
    conn.execute(delete(_claims))
    problems = [f"message {row.sha256} was archived (audit entry {row.seq}) and is no longer "
                "in the catalog, yet no disposition removed it." for row in shown]
    if total > _SHOWN:
        problems.append(f"{total - _SHOWN} more archived messages are missing from the "
                        "catalog without a disposition.")
    return problems


def _some(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:_SHOWN])
    return shown + (", ..." if len(ids) > _SHOWN else "")
