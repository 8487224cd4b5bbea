"""Job claims: scheduled work run by one node at a time, taken over when a node dies.

Several ``mailvault serve`` nodes may share one PostgreSQL catalog. Each runs the same
schedules (source syncs, the lifecycle pass, review runs, storage samples) and may resume the
same interrupted jobs (exports, dispositions); a job runs where its claim is held. A claim is a
row of ``job_claims`` (one per job name) with a lease: the holder renews it while the job runs
(``Lease``, every third of the lease), and once a lease has run out without renewal (its node
died, or hangs) any node may take the job over; the lapsed run is then recorded as such. A
claim whose process is gone from this very node (killed, and started again) is taken over at
once: the holder names its node and process id.

Taking a claim is one transaction: make sure the job's row exists, then ``SELECT ... FOR UPDATE
SKIP LOCKED`` it (on PostgreSQL a node that finds another node deciding about the same job
moves on at once instead of waiting), decide from the row, and write the claim with an update
that repeats the decision's conditions. On SQLite the same code runs (SQLAlchemy leaves out
``FOR UPDATE``, which SQLite has no use for: it has one writer at a time, and the guarded
update is what decides there). Leases are measured by the catalog server's clock
(``database.clock``), so nodes whose clocks differ still agree.

A job that is due periodically passes ``every_s``: a node takes it only when its last run
ended at least that long ago, so two nodes ticking on the same schedule still run it once per
period. ``job_runs`` keeps every run (node, start, end, outcome): the history operators read
and the tests check for overlaps.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from mailvault.config import ServeSettings
from mailvault.errors import BusyError
from mailvault.store import database, schema

log = logging.getLogger(__name__)

DONE = "done"
FAILED = "failed"
LAPSED = "lapsed"


def node_name(configured: str) -> str:
    """This node's name: ``[serve] node``, or the machine's host name."""
    return configured or socket.gethostname()


@dataclass(frozen=True)
class Claim:
    """A claim this process holds: the job, who (node and a token of this holding), the run
    it recorded, and until when the lease lasts unless renewed."""

    job: str
    node: str
    holder: str
    run_id: int
    expires_at: float


@dataclass(frozen=True)
class JobRun:
    """One run of a claimed job as ``job_runs`` records it."""

    id: int
    job: str
    node: str
    started_at: float
    renewed_at: float
    ended_at: float | None
    outcome: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "job": self.job, "node": self.node,
                "started_at": self.started_at, "renewed_at": self.renewed_at,
                "ended_at": self.ended_at, "outcome": self.outcome}


def claim(engine: Engine, job: str, node: str, lease_s: float,
          every_s: float = 0.0) -> Claim | None:
    """Take ``job`` for ``lease_s`` seconds, or None when another holder has it (its lease
    has not run out), another node is taking it this moment, or (with ``every_s``) its last
    run ended less than ``every_s`` seconds ago."""
    c = schema.job_claims
    holder = f"{node}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
    with engine.connect() as conn:
        known = conn.execute(select(c.c.job).where(c.c.job == job)).first() is not None
    if not known:  # a write only the first time: a node looks every few seconds
        with engine.begin() as conn:
            conn.execute(database.insert_ignoring(conn, c).values(
                job=job, holder="", node="", expires_at=0.0))
    with engine.connect() as conn, conn.begin() as transaction:
        row = conn.execute(select(c).where(c.c.job == job)
                           .with_for_update(skip_locked=True)).first()
        if row is None:
            return None  # another node holds the row for its own decision
        moment = database.clock(conn)
        free = or_(c.c.holder == "", c.c.expires_at <= moment)
        if row.holder and _died_here(row.holder, node):
            # Killed on this node: its job is ours to take over now, not when its lease ends.
            free = or_(free, c.c.holder == row.holder)
        elif row.holder and row.expires_at > moment:
            return None
        due = or_(c.c.finished_at.is_(None), c.c.finished_at + every_s <= moment)
        if every_s > 0 and row.finished_at is not None and row.finished_at + every_s > moment:
            return None
        runs = schema.job_runs
        inserted = conn.execute(runs.insert().values(
            job=job, node=node, holder=holder, started_at=moment,
            renewed_at=moment)).inserted_primary_key
        assert inserted is not None
        run_id = int(inserted[0])
        expires = moment + lease_s
        # The same conditions again, in the update: on SQLite the select above locked nothing.
        taken = conn.execute(update(c).where(c.c.job == job, and_(free, due))
                             .values(holder=holder, node=node, run_id=run_id,
                                     expires_at=expires))
        if taken.rowcount != 1:
            transaction.rollback()
            return None
        if row.holder and row.run_id is not None:
            # Its process died, or its node stopped renewing (died or hung): the run ended
            # when its lease did, or now if that is sooner.
            conn.execute(update(runs).where(runs.c.id == row.run_id,
                                            runs.c.ended_at.is_(None))
                         .values(ended_at=min(row.expires_at, moment), outcome=LAPSED))
        return Claim(job, node, holder, run_id, expires)


def _died_here(holder: str, node: str) -> bool:
    """Whether ``holder`` was a process of this node that is gone (its pid names no process
    here). Node names must therefore differ between machines (``[serve] node``)."""
    held_on, _, rest = holder.partition("/")
    pid = rest.partition("/")[0]
    if held_on != node or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def renew(engine: Engine, held: Claim, lease_s: float) -> Claim | None:
    """Extend the lease; None when it was lost (it ran out, and may have been taken over):
    the job must then stop, as another node may run it now."""
    c = schema.job_claims
    with engine.begin() as conn:
        moment = database.clock(conn)
        expires = moment + lease_s
        renewed = conn.execute(update(c).where(
            c.c.job == held.job, c.c.holder == held.holder, c.c.expires_at > moment,
        ).values(expires_at=expires))
        if renewed.rowcount != 1:
            return None
        conn.execute(update(schema.job_runs).where(schema.job_runs.c.id == held.run_id)
                     .values(renewed_at=moment))
    return Claim(held.job, held.node, held.holder, held.run_id, expires)


def release(engine: Engine, held: Claim, outcome: str = DONE) -> None:
    """End the run: record how it ended and let the job go (if it is still ours)."""
    c = schema.job_claims
    runs = schema.job_runs
    with engine.begin() as conn:
        moment = database.clock(conn)
        conn.execute(update(c).where(c.c.job == held.job, c.c.holder == held.holder)
                     .values(holder="", node="", expires_at=moment, finished_at=moment))
        conn.execute(update(runs).where(runs.c.id == held.run_id, runs.c.ended_at.is_(None))
                     .values(ended_at=moment, outcome=outcome))


def holder_of(engine: Engine, job: str) -> str | None:
    """The node whose lease on ``job`` has not run out, or None."""
    c = schema.job_claims
    with engine.connect() as conn:
        moment = database.clock(conn)
        row = conn.execute(select(c.c.node).where(
            c.c.job == job, c.c.holder != "", c.c.expires_at > moment)).first()
    return None if row is None else str(row.node)


def history(engine: Engine, job: str | None = None, limit: int = 1000) -> list[JobRun]:
    """The newest runs first (of one job, if named)."""
    runs = schema.job_runs
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if job is not None:
        query = query.where(runs.c.job == job)
    with engine.connect() as conn:
        return [JobRun(r.id, r.job, r.node, r.started_at, r.renewed_at, r.ended_at, r.outcome)
                for r in conn.execute(query)]


class Lease:
    """A held claim kept alive while the job runs: a thread renews it every third of the
    lease; ``lost()`` says whether it could not (the job should stop at its next step). As a
    context manager it releases the claim at the end, recording ``failed`` on an exception."""

    def __init__(self, engine: Engine, held: Claim, lease_s: float) -> None:
        self.engine = engine
        self.claim = held
        self.lease_s = lease_s
        self._lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease {held.job}",
                                        daemon=True)

    def lost(self) -> bool:
        """Whether the lease ran out before it could be renewed."""
        return self._lost.is_set()

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 _trace: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()
        release(self.engine, self.claim, DONE if error is None else FAILED)

    def _renew(self) -> None:
        while not self._done.wait(self.lease_s / 3):
            try:
                renewed = renew(self.engine, self.claim, self.lease_s)
            except Exception:  # a catalog that cannot be reached: tried again next time
                log.exception("the lease on %s could not be renewed", self.claim.job)
                continue
            if renewed is None:
                log.warning("the lease on %s ran out: another node may run it now",
                            self.claim.job)
                self._lost.set()
                return
            self.claim = renewed


def hold_or_busy(engine: Engine, settings: ServeSettings, job: str, what: str) -> Lease:
    """Claim ``job`` for a run asked for now (a command, a page, a pass), or raise BusyError
    ("WHAT is running on NODE.") when another process or node holds it."""
    lease = hold(engine, settings, job)
    if lease is None:
        node = holder_of(engine, job) or "another node"
        raise BusyError(f"{what} is running on {node}.")
    return lease


def hold(engine: Engine, settings: ServeSettings, job: str,
         every_s: float = 0.0) -> Lease | None:
    """Claim ``job`` for this node (``[serve] node`` and ``lease_s``) as a ``Lease`` to run it
    under, or None when it is not this node's to run now (see ``claim``)."""
    held = claim(engine, job, node_name(settings.node), settings.lease_s, every_s)
    return None if held is None else Lease(engine, held, settings.lease_s)
