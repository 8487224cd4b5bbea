"""Tier moves as resumable jobs: the new copy is written and fsynced, the pointer switch is
committed, and only then is the old copy released (compaction reclaims its bytes later).

A job snapshots the messages it will move (``tier_job_items``). Each step moves a batch:
read every message back (hash-checked), write it in the target tier's packing, fsync, then one
catalog transaction switches the locations, removes the batch from the job and queues the
index documents for rebuilding (full text in Active and Open, metadata only in Deep). A move
killed at any point leaves each message at exactly one committed location: the old one or the
new one. Running the job again finishes it.

A part (an attachment stored once for many messages) lives in the warmest tier of the messages
that use it, so activating one message never leaves a shared attachment in a Deep chunk while
another Active message needs it, and moving one message to Deep does not drag it along.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from mailvault.compliance.packing import Packer, Written, warmest
from mailvault.errors import InputError, NotFoundError
from mailvault.search.query import parse
from mailvault.store import audit, catalog, claims, dictionaries, schema
from mailvault.store.blobs import KIND_MESSAGE, KIND_PART
from mailvault.store.catalog import MessageRow, from_epoch, now

if TYPE_CHECKING:
    from mailvault.vault import StoredMessage, Vault

TIERS = ("active", "open", "deep")
RUNNING = "running"
DONE = "done"
DICTIONARY_SAMPLES = 2000
DEEP_BATCH_MAX = 20000
SAMPLE_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Job:
    """A tier move: which messages, to where, and how far it got."""

    id: int
    query: str
    target: str
    actor: str
    state: str
    total: int
    done: int
    created_at: datetime | None
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "query": self.query, "target": self.target,
                "actor": self.actor, "state": self.state, "total": self.total,
                "done": self.done,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


def check_tier(tier: str) -> str:
    """The tier name, lower case; InputError when it is not one of the three."""
    name = tier.strip().lower()
    if name not in TIERS:
        raise InputError(f"{tier!r} is not a tier (use active, open or deep).")
    return name


def start_move(vault: Vault, query: str, target: str, actor: str) -> Job:
    """Create a job moving every message that matches a search query to ``target``."""
    target = check_tier(target)
    ids = list(vault.index.ids(parse(query)))
    return create_job(vault, ids, target, query, actor)


def create_job(vault: Vault, ids: Sequence[int], target: str, query: str, actor: str) -> Job:
    """Create a job moving these messages (those not already in ``target``)."""
    target = check_tier(target)
    with vault.engine.begin() as conn:
        moving = _not_in(conn, ids, target)
        result = conn.execute(insert(schema.tier_jobs).values(
            query=query, target=target, actor=actor, state=RUNNING if moving else DONE,
            total=len(moving), created_at=now(),
            finished_at=None if moving else now()))
        assert result.inserted_primary_key is not None
        job_id = int(result.inserted_primary_key[0])
        for start in range(0, len(moving), 500):
            conn.execute(insert(schema.tier_job_items),
                         [{"job_id": job_id, "message_id": m}
                          for m in moving[start:start + 500]])
        audit.record(conn, actor, "tier-move", {"job": job_id, "query": query,
                                                "to": target, "messages": len(moving)})
        return _job(conn, job_id)


def run_job(vault: Vault, job_id: int,
            progress: Callable[[int, int], None] | None = None,
            stopping: Callable[[], bool] | None = None) -> Job:
    """Move what is left of a job, batch by batch; safe to run again after a crash.
    ``stopping`` is asked between batches: when it says so, the job is left running (a later
    run finishes it). The job is claimed (``tier-move:ID``) while it runs, so a command and
    a serve node's lifecycle pass, or two nodes, never move the same job at once: the second
    gets BusyError."""
    with vault.engine.connect() as conn:
        job = _job(conn, job_id)
    if job.state == DONE:
        return job
    lease = claims.hold_or_busy(vault.engine, vault.settings.serve, f"tier-move:{job_id}",
                                f"tier move job {job_id}")
    with lease:
        return _run_job(vault, job, progress,
                        lambda: lease.lost() or (stopping is not None and stopping()))


def _run_job(vault: Vault, job: Job, progress: Callable[[int, int], None] | None,
             stopping: Callable[[], bool]) -> Job:
    job_id = job.id
    while True:
        if stopping():
            return job
        with vault.engine.connect() as conn:
            rows, gone = _next_batch(vault, conn, job)
        if not rows and not gone:
            break
        _move_batch(vault, job, rows, gone)
        with vault.engine.connect() as conn:
            job = _job(conn, job_id)
        if progress is not None:
            progress(job.done, job.total)
    with vault.engine.begin() as conn:
        conn.execute(update(schema.tier_jobs).where(schema.tier_jobs.c.id == job_id)
                     .values(state=DONE, finished_at=now()))
        audit.record(conn, job.actor, "tier-move-done", {"job": job_id, "to": job.target,
                                                         "messages": job.done})
        return _job(conn, job_id)


def unfinished(vault: Vault) -> list[Job]:
    """Jobs that were started and not finished (killed, or still running elsewhere)."""
    with vault.engine.connect() as conn:
        ids = conn.execute(select(schema.tier_jobs.c.id)
                           .where(schema.tier_jobs.c.state == RUNNING)
                           .order_by(schema.tier_jobs.c.id)).scalars().all()
        return [_job(conn, i) for i in ids]


def recent_jobs(vault: Vault, limit: int = 20) -> list[Job]:
    """The newest jobs, newest first."""
    with vault.engine.connect() as conn:
        ids = conn.execute(select(schema.tier_jobs.c.id)
                           .order_by(schema.tier_jobs.c.id.desc()).limit(limit)).scalars().all()
        return [_job(conn, i) for i in ids]


# -- one batch -------------------------------------------------------------------------------

def _next_batch(vault: Vault, conn: Connection, job: Job) -> tuple[list[MessageRow], list[int]]:
    """The next messages of a job in storage order (so a Deep chunk is read once), and the
    ids of items whose message no longer exists (disposed meanwhile)."""
    items, m = schema.tier_job_items, schema.messages
    settings = vault.settings.tiers
    limit = DEEP_BATCH_MAX if job.target == "deep" else max(1, settings.move_batch)
    found = conn.execute(
        select(items.c.message_id, m.c.id.label("present"))
        .join(m, m.c.id == items.c.message_id, isouter=True)
        .where(items.c.job_id == job.id)
        .order_by(m.c.volume_id, m.c.offset).limit(limit)).all()
    ids = [row.message_id for row in found if row.present is not None]
    gone = [row.message_id for row in found if row.present is None]
    return catalog.messages_by_id(conn, ids), gone


def _read_batch(vault: Vault, job: Job, rows: list[MessageRow]
                ) -> tuple[list[MessageRow], dict[int, StoredMessage]]:
    """Read the messages to move; for Deep only until a chunk's worth of skeletons (the rest
    wait for the next batch), so that each batch is one full chunk whatever the attachments."""
    budget = max(1, vault.settings.tiers.deep_chunk_mb) * 1024 * 1024
    taken = 0
    stored: dict[int, StoredMessage] = {}
    done: list[MessageRow] = []
    for row in rows:
        done.append(row)
        if row.tier != job.target:
            stored[row.id] = vault.read_stored(row)
            taken += len(stored[row.id].skeleton)
        if job.target == "deep" and taken >= budget:
            break
    return done, stored


def _move_batch(vault: Vault, job: Job, rows: list[MessageRow], gone: list[int]) -> None:
    rows, stored = _read_batch(vault, job, rows)
    moving = [r for r in rows if r.tier != job.target]
    with vault.engine.connect() as conn:
        part_tiers = _part_targets(conn, moving, stored, job.target)
    samples: list[bytes] = []
    if job.target == "open" and moving:
        samples = _dictionary_samples(vault, job, moving, stored)
    packers: dict[str, Packer] = {}

    def packer(tier: str) -> Packer:
        if tier not in packers:
            packers[tier] = Packer(vault, tier, samples)
        return packers[tier]

    message_slots: dict[int, list[Written]] = {}
    part_slots: dict[str, tuple[str, list[Written]]] = {}
    for row in moving:
        message = stored[row.id]
        for digest, data in message.parts.items():
            hex_digest = digest.hex()
            target, current = part_tiers[hex_digest]
            if target != current and hex_digest not in part_slots:
                part_slots[hex_digest] = (target, packer(target).add(KIND_PART, digest, data))
        message_slots[row.id] = packer(job.target).add(
            KIND_MESSAGE, bytes.fromhex(row.sha256), message.skeleton)
    for each in packers.values():
        each.flush()
    vault.blobs.sync()
    with vault.engine.begin() as conn:
        m, p = schema.messages, schema.parts
        if moving:
            conn.execute(update(m).where(m.c.id == bindparam("b_id")).values(
                tier=bindparam("b_tier"), volume_id=bindparam("b_volume"),
                offset=bindparam("b_offset"), length=bindparam("b_length"),
                stored_bytes=bindparam("b_stored")),
                [_new_place(row.id, job.target, message_slots[row.id][0]) for row in moving])
        if part_slots:
            conn.execute(update(p).where(p.c.sha256 == bindparam("b_id")).values(
                tier=bindparam("b_tier"), volume_id=bindparam("b_volume"),
                offset=bindparam("b_offset"), length=bindparam("b_length")),
                [_new_place(digest, tier, slot[0]) for digest, (tier, slot)
                 in part_slots.items()])
        finished = [r.id for r in rows] + gone
        for start in range(0, len(finished), 500):
            conn.execute(schema.tier_job_items.delete().where(
                schema.tier_job_items.c.job_id == job.id,
                schema.tier_job_items.c.message_id.in_(finished[start:start + 500])))
        catalog.queue_reindex(conn, [r.id for r in moving])
    vault.heal_index()


def _new_place(key: int | str, tier: str, written: Written) -> dict[str, Any]:
    """Bind values of one location switch (the b_ names keep clear of column names)."""
    return {"b_id": key, "b_tier": tier, "b_volume": written.location.volume,
            "b_offset": written.location.offset, "b_length": written.location.length,
            "b_stored": written.stored_bytes}


def _part_targets(conn: Connection, moving: list[MessageRow],
                  stored: dict[int, StoredMessage], target: str) -> dict[str, tuple[str, str]]:
    """For every part of the moving messages: (tier it should live in, tier it is in)."""
    hashes = sorted({d.hex() for m in stored.values() for d in m.parts})
    if not hashes:
        return {}
    moving_ids = {r.id for r in moving}
    out: dict[str, tuple[str, str]] = {}
    mp, m, p = schema.message_parts, schema.messages, schema.parts
    for start in range(0, len(hashes), 500):
        chunk = hashes[start:start + 500]
        users: dict[str, set[str]] = {h: {target} for h in chunk}
        for row in conn.execute(select(mp.c.part_sha256, mp.c.message_id, m.c.tier)
                                .join(m, m.c.id == mp.c.message_id)
                                .where(mp.c.part_sha256.in_(chunk))):
            if row.message_id not in moving_ids:
                users[row.part_sha256].add(row.tier)
        for part in conn.execute(select(p.c.sha256, p.c.tier).where(p.c.sha256.in_(chunk))):
            out[part.sha256] = (warmest(users[part.sha256]), part.tier)
    return out


def _dictionary_samples(vault: Vault, job: Job, moving: list[MessageRow],
                        stored: dict[int, StoredMessage]) -> list[bytes]:
    """Skeletons to train the Open dictionary on, when the tier has none yet."""
    if vault.settings.tiers.open_dictionary_kb <= 0 or \
            dictionaries.newest(vault.engine, "open") is not None:
        return []
    samples = [stored[r.id].skeleton for r in moving]
    if len(samples) < DICTIONARY_SAMPLES:
        with vault.engine.connect() as conn:
            more = conn.execute(
                select(schema.tier_job_items.c.message_id)
                .where(schema.tier_job_items.c.job_id == job.id)
                .limit(DICTIONARY_SAMPLES)).scalars().all()
            extra = [r for r in catalog.messages_by_id(conn, list(more))
                     if r.id not in stored][: DICTIONARY_SAMPLES - len(samples)]
        samples += [vault.read_stored(r).skeleton for r in extra]
    return [sample[:SAMPLE_MAX_BYTES] for sample in samples]


def _not_in(conn: Connection, ids: Sequence[int], target: str) -> list[int]:
    out: list[int] = []
    for start in range(0, len(ids), 500):
        out += conn.execute(select(schema.messages.c.id).where(
            schema.messages.c.id.in_(ids[start:start + 500]),
            schema.messages.c.tier != target)).scalars().all()
    return sorted(out)


def _job(conn: Connection, job_id: int) -> Job:
    row = conn.execute(select(schema.tier_jobs).where(schema.tier_jobs.c.id == job_id)).first()
    if row is None:
        raise NotFoundError(f"there is no tier job {job_id}.")
    left = int(conn.execute(select(func.count()).select_from(schema.tier_job_items)
                            .where(schema.tier_job_items.c.job_id == job_id)).scalar() or 0)
    return Job(id=row.id, query=row.query, target=row.target, actor=row.actor,
               state=row.state, total=row.total, done=row.total - left,
               created_at=from_epoch(row.created_at), finished_at=from_epoch(row.finished_at))
