"""Disposition: the only way a message ever leaves the vault.

A message is disposed of only when its retain-until date (recomputed from the policies at the
moment of disposal) has passed and no active legal hold covers it. Disposal removes its catalog
content (the message row, addresses, attachments, provenance), its index document and its
blobs (a shared part only when no remaining message uses it; compaction then rewrites the
affected volumes so that the bytes are gone from disk), and leaves a tombstone: hash, id, size,
dates, the deciding policy, who proposed and who approved. Each run writes a report file.

With ``[retention] four_eyes``, one admin proposes a run (the candidate list is frozen) and a
different one approves it; approval re-checks every candidate before anything is deleted. A run
proposed while the rule was on needs another approver even if the rule is turned off later.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, insert, select, update

from mailvault.compliance import compaction, holds, object_lock, retention
from mailvault.errors import InputError, NotFoundError
from mailvault.store import audit, catalog, claims, file_modes, schema
from mailvault.store.catalog import from_epoch, now

if TYPE_CHECKING:
    from mailvault.vault import Vault

PROPOSED = "proposed"
# Approved and deleting batch by batch; a run still in this state was interrupted (killed),
# and the next ``dispose`` (or ``--approve`` of it) finishes it.
EXECUTING = "executing"
EXECUTED = "executed"
CANCELLED = "cancelled"
REPORTS = "reports"
_BATCH = 500
# Compact a volume however little of it was released (a resumed run's volumes are unknown).
_ANY_RELEASED = 1e-9


@dataclass(frozen=True)
class Candidate:
    """A message past its retention: what its tombstone will say."""

    message_id: int
    sha256: str
    size: int
    date: int | None
    archived_at: int
    retain_until: int
    policy: str

    def to_json(self) -> dict[str, Any]:
        def iso(value: int | None) -> str | None:
            stamp = from_epoch(value)
            return stamp.isoformat() if stamp else None

        return {"id": self.message_id, "sha256": self.sha256, "size": self.size,
                "date": iso(self.date), "archived_at": iso(self.archived_at),
                "retain_until": iso(self.retain_until), "policy": self.policy}


@dataclass
class Plan:
    """What a disposition would do now: candidates, and expired messages kept by holds."""

    at: int
    candidates: list[Candidate] = field(default_factory=list)
    held: dict[int, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"at": _iso(self.at),
                "candidates": len(self.candidates),
                "bytes": sum(c.size for c in self.candidates),
                "held_back": len(self.held),
                "messages": [c.to_json() for c in self.candidates],
                "held": [{"id": i, "holds": names} for i, names in sorted(self.held.items())]}


@dataclass(frozen=True)
class Run:
    """One disposition run, proposed and (once approved) executed."""

    id: int
    state: str
    proposed_by: str
    proposed_at: int
    approved_by: str | None
    executed_at: int | None
    candidates: int
    disposed: int
    report: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "proposed_by": self.proposed_by,
                "proposed_at": _iso(self.proposed_at), "approved_by": self.approved_by,
                "executed_at": _iso(self.executed_at), "candidates": self.candidates,
                "disposed": self.disposed, "report": self.report}


def plan(vault: Vault, at: int | None = None, within: Collection[int] | None = None) -> Plan:
    """Compute, without changing anything, what a disposition would delete now (of the
    messages ``within``, when given: an erasure request's)."""
    at = now() if at is None else at
    computed = retention.compute(vault)
    names = {p.id: p.name for p in retention.policies(vault)}
    expired = {i: v for i, v in computed.items()
               if v[0] <= at and (within is None or i in within)}
    covered = holds.held(vault)
    result = Plan(at=at)
    m = schema.messages
    ids = sorted(expired)
    with vault.engine.connect() as conn:
        for start in range(0, len(ids), _BATCH):
            for row in conn.execute(select(m.c.id, m.c.sha256, m.c.size, m.c.date,
                                           m.c.archived_at)
                                    .where(m.c.id.in_(ids[start:start + _BATCH]))):
                if row.id in covered:
                    result.held[row.id] = covered[row.id]
                    continue
                until, policy = expired[row.id]
                result.candidates.append(Candidate(row.id, row.sha256, row.size, row.date,
                                                   row.archived_at, until, names[policy]))
    return result


def dry_run(vault: Vault, actor: str) -> Plan:
    """The plan, audited as looked at; nothing else is written."""
    result = plan(vault)
    with vault.engine.begin() as conn:
        audit.record(conn, actor, "dispose-dry-run", {"candidates": len(result.candidates),
                                                      "held_back": len(result.held)})
    return result


def propose(vault: Vault, actor: str, within: Collection[int] | None = None,
            purpose: str = "", state: str = PROPOSED) -> Run:
    """Freeze the current candidates (of ``within``, when given) into a run awaiting
    approval (or, for ``dispose``, ``state`` EXECUTING: approved by its proposer in the same
    transaction); ``purpose`` (an erasure request) goes into its audit entry."""
    result = plan(vault, within=within)
    with vault.engine.begin() as conn:
        inserted = conn.execute(insert(schema.disposition_runs).values(
            state=state, proposed_by=actor, proposed_at=now(),
            approved_by=actor if state == EXECUTING else None,
            candidates=len(result.candidates), disposed=0, report=""))
        assert inserted.inserted_primary_key is not None
        run_id = int(inserted.inserted_primary_key[0])
        ids = [c.message_id for c in result.candidates]
        for start in range(0, len(ids), _BATCH):
            conn.execute(insert(schema.disposition_items),
                         [{"run_id": run_id, "message_id": i} for i in ids[start:start + _BATCH]])
        detail: dict[str, Any] = {
            "run": run_id, "candidates": len(ids), "held_back": len(result.held),
            "four_eyes": vault.settings.retention.four_eyes}
        if purpose:
            detail["purpose"] = purpose
        audit.record(conn, actor, "dispose-propose", detail)
        return _run(conn, run_id)


def approve(vault: Vault, run_id: int, actor: str) -> Run:
    """Approve and execute a proposed run (by someone else when four-eyes is on)."""
    with vault.engine.connect() as conn:
        run = _run(conn, run_id)
    if run.state not in (PROPOSED, EXECUTING):
        raise InputError(f"disposition run {run_id} is {run.state}, not awaiting approval.")
    if run.state == EXECUTING:  # approved already, interrupted: finish it as approved
        return _execute(vault, run, run.approved_by or actor)
    if actor == run.proposed_by and (vault.settings.retention.four_eyes
                                     or _proposed_under_four_eyes(vault, run_id)):
        raise InputError(f"disposition run {run_id} was proposed by {actor}: another admin "
                         "must approve it (four-eyes rule).")
    return _execute(vault, run, actor)


def _proposed_under_four_eyes(vault: Vault, run_id: int) -> bool:
    """Whether the rule was on when the run was proposed (its audit entry says): turning it
    off afterwards does not let the proposer approve their own run."""
    with vault.engine.connect() as conn:
        for entry in audit.newest_first(conn, "dispose-propose"):
            if entry.detail.get("run") == run_id:
                return bool(entry.detail.get("four_eyes"))
    return False


def cancel(vault: Vault, run_id: int, actor: str) -> Run:
    """Withdraw a proposed run."""
    with vault.engine.begin() as conn:
        run = _run(conn, run_id)
        if run.state != PROPOSED:
            raise InputError(f"disposition run {run_id} is {run.state}, not awaiting approval.")
        conn.execute(update(schema.disposition_runs)
                     .where(schema.disposition_runs.c.id == run_id).values(state=CANCELLED))
        audit.record(conn, actor, "dispose-cancel", {"run": run_id})
        return _run(conn, run_id)


def dispose(vault: Vault, actor: str, within: Collection[int] | None = None,
            purpose: str = "") -> Run:
    """Propose and execute at once (only when the four-eyes rule is off); first finish any
    approved run that was interrupted."""
    if vault.settings.retention.four_eyes:
        raise InputError("the four-eyes rule is on: propose a run, and have another admin "
                         "approve it.")
    for run in interrupted(vault):
        _execute(vault, run, run.approved_by or actor)
    return _execute(vault, propose(vault, actor, within, purpose, state=EXECUTING), actor)


def interrupted(vault: Vault) -> list[Run]:
    """Approved runs whose execution was cut short (the process was killed), oldest first."""
    with vault.engine.connect() as conn:
        ids = conn.execute(select(schema.disposition_runs.c.id)
                           .where(schema.disposition_runs.c.state == EXECUTING)
                           .order_by(schema.disposition_runs.c.id)).scalars().all()
        return [_run(conn, i) for i in ids]


def runs(vault: Vault, limit: int = 20) -> list[Run]:
    """The newest disposition runs first."""
    with vault.engine.connect() as conn:
        ids = conn.execute(select(schema.disposition_runs.c.id)
                           .order_by(schema.disposition_runs.c.id.desc())
                           .limit(limit)).scalars().all()
        return [_run(conn, i) for i in ids]


# -- execution -------------------------------------------------------------------------------

def _execute(vault: Vault, run: Run, approver: str) -> Run:
    """Execute the run under its job claim (``disposition:RUN``): two nodes (or two
    administrators) finishing the same interrupted run would dispose of it twice at once."""
    with claims.hold_or_busy(vault.engine, vault.settings.serve, f"disposition:{run.id}",
                             f"disposition run {run.id}"):
        return _execute_held(vault, run, approver)


def _execute_held(vault: Vault, run: Run, approver: str) -> Run:
    if run.state == PROPOSED:
        with vault.engine.begin() as conn:
            conn.execute(update(schema.disposition_runs)
                         .where(schema.disposition_runs.c.id == run.id)
                         .values(state=EXECUTING, approved_by=approver))
    with vault.engine.connect() as conn:
        frozen = set(conn.execute(select(schema.disposition_items.c.message_id)
                                  .where(schema.disposition_items.c.run_id == run.id))
                     .scalars())
        resumed = bool(_tombstoned(conn, run.id))
    # Everything is checked again now: a hold placed or a policy lengthened since the
    # proposal wins over it.
    current = plan(vault)
    final = [c for c in current.candidates if c.message_id in frozen]
    disposed_at = now()
    volumes: set[int] = set()
    for start in range(0, len(final), _BATCH):
        batch = final[start:start + _BATCH]
        with vault.engine.begin() as conn:
            volumes |= _delete(conn, batch, run, approver, disposed_at)
            audit.record(conn, approver, "dispose", {
                "run": run.id, "messages": len(batch),
                "sha256": [c.sha256 for c in batch]})
        vault.heal_index()
    # A resumed run does not know which volumes its killed attempt released bytes in:
    # every volume with released bytes is compacted, so the disposed bytes still leave.
    if resumed:
        compacted = compaction.compact(vault, approver, min_free=_ANY_RELEASED,
                                       include_open=True)
    else:
        compacted = compaction.compact(vault, approver, volume_ids=volumes, include_open=True)
    # Blobs in a bucket: an object goes once nothing points into it and its lock has passed.
    object_lock.reclaim(vault)
    with vault.engine.connect() as conn:
        done = _tombstoned(conn, run.id)
    report = _write_report(vault, run, approver, done, current, frozen, compacted)
    with vault.engine.begin() as conn:
        conn.execute(update(schema.disposition_runs)
                     .where(schema.disposition_runs.c.id == run.id)
                     .values(state=EXECUTED, approved_by=approver, executed_at=now(),
                             disposed=len(done), report=str(report)))
        audit.record(conn, approver, "dispose-done", {
            "run": run.id, "disposed": len(done), "proposed_by": run.proposed_by,
            "report": str(report), "bytes_reclaimed": compacted.bytes_before
            - compacted.bytes_after})
        return _run(conn, run.id)


def _tombstoned(conn: Connection, run_id: int) -> list[Candidate]:
    """What the run has disposed of so far (in this and any interrupted attempt)."""
    t = schema.tombstones
    return [Candidate(row.message_id, row.sha256, row.size, row.date, row.archived_at,
                      row.retain_until, row.policy)
            for row in conn.execute(select(t).where(t.c.run_id == run_id)
                                    .order_by(t.c.message_id))]


def _delete(conn: Connection, batch: list[Candidate], run: Run, approver: str,
            disposed_at: int) -> set[int]:
    """Remove these messages' catalog content, leave tombstones; returns the volumes whose
    bytes were released."""
    m, mp, p = schema.messages, schema.message_parts, schema.parts
    ids = [c.message_id for c in batch]
    conn.execute(insert(schema.tombstones), [{
        "message_id": c.message_id, "sha256": c.sha256, "size": c.size, "date": c.date,
        "archived_at": c.archived_at, "retain_until": c.retain_until, "policy": c.policy,
        "run_id": run.id, "proposed_by": run.proposed_by, "approved_by": approver,
        "disposed_at": disposed_at} for c in batch])
    volumes = set(conn.execute(select(m.c.volume_id).where(m.c.id.in_(ids))).scalars())
    uses: dict[str, int] = {}
    for digest in conn.execute(select(mp.c.part_sha256).where(mp.c.message_id.in_(ids))
                               ).scalars():
        uses[digest] = uses.get(digest, 0) + 1
    for digest, count in uses.items():
        conn.execute(update(p).where(p.c.sha256 == digest).values(refs=p.c.refs - count))
    for table in _referencing_tables():
        conn.execute(table.delete().where(table.c.message_id.in_(ids)))
    for table in (schema.retention, schema.tier_job_items):
        conn.execute(table.delete().where(table.c.message_id.in_(ids)))
    # The index documents go through the reindex queue, so that a crash right after this
    # commit (or another process holding the index writer) still removes them.
    catalog.queue_reindex(conn, ids)
    unused = conn.execute(select(p.c.sha256, p.c.volume_id)
                          .where(p.c.sha256.in_(list(uses)), p.c.refs <= 0)).all()
    volumes |= {row.volume_id for row in unused}
    if unused:
        conn.execute(p.delete().where(p.c.sha256.in_([row.sha256 for row in unused])))
    conn.execute(m.delete().where(m.c.id.in_(ids)))
    return volumes


def _referencing_tables() -> list[Table]:
    """Every catalog table whose rows belong to a message (a foreign key to messages.id)."""
    out = []
    for table in schema.metadata.sorted_tables:
        if table.name == "messages":
            continue
        if any(fk.column is schema.messages.c.id for fk in table.foreign_keys) and \
                "message_id" in table.c:
            out.append(table)
    return out


def _write_report(vault: Vault, run: Run, approver: str, final: list[Candidate], current: Plan,
                  frozen: set[int], compacted: compaction.CompactionReport) -> Path:
    folder = vault.path / REPORTS
    file_modes.make_folder(folder)
    path = folder / f"disposition-{run.id:06d}.json"
    disposed = {c.message_id for c in final}
    data = {
        "run": run.id,
        "proposed_by": run.proposed_by,
        "proposed_at": _iso(run.proposed_at),
        "approved_by": approver,
        "executed_at": datetime.now(UTC).isoformat(),
        "disposed": [c.to_json() for c in final],
        "kept_since_proposal": sorted(frozen - disposed),
        "held_back": [{"id": i, "holds": names} for i, names in sorted(current.held.items())],
        "compaction": compacted.to_json(),
    }
    file_modes.write_replacing(path, json.dumps(data, indent=2, ensure_ascii=False).encode())
    return path


def _run(conn: Connection, run_id: int) -> Run:
    row = conn.execute(select(schema.disposition_runs)
                       .where(schema.disposition_runs.c.id == run_id)).first()
    if row is None:
        raise NotFoundError(f"there is no disposition run {run_id}.")
    return Run(id=row.id, state=row.state, proposed_by=row.proposed_by,
               proposed_at=row.proposed_at, approved_by=row.approved_by,
               executed_at=row.executed_at, candidates=row.candidates, disposed=row.disposed,
               report=row.report)


def _iso(value: int | None) -> str | None:
    stamp = from_epoch(value)
    return stamp.isoformat() if stamp else None
