"""Job claims (store/claims.py) on both catalogs: of two claimers one wins, a lease renewed
keeps the job, a lease run out hands it over (the lapsed run recorded so), a periodic job is
taken once per period, a dead process's claim on its own node is taken over at once; on
PostgreSQL processes racing for the same jobs get each once, and a job whose row another node
holds is skipped, not waited for (SKIP LOCKED). The last two fail without the guarded update
and without SKIP LOCKED."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from mailvault.config import ServeSettings
from mailvault.store import claims, database, schema, vault_format
from tests.postgresql.conftest import Catalog

RACERS = 4
RACED_JOBS = 200


@dataclass(frozen=True)
class Where:
    """How to open the catalog a test claims in (in another process too)."""

    sqlite: str
    url: str = ""
    password_file: str = ""

    def open(self) -> Engine:
        return database.open_engine(Path(self.sqlite), self.url, self.password_file)


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    if request.param == "sqlite":
        return Where(str(tmp_path / "catalog.sqlite"))
    pg: Catalog = request.getfixturevalue("pg_catalog")
    return Where(str(tmp_path / "unused.sqlite"), pg.url, str(pg.password_file))


@pytest.fixture
def engine(where: Where) -> Iterator[Engine]:
    made = where.open()
    vault_format.create(made)
    try:
        yield made
    finally:
        made.dispose()


def _until_claimed(engine: Engine, job: str, node: str, lease_s: float) -> claims.Claim:
    """Claim as soon as the job is free (a readiness wait, bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = claims.claim(engine, job, node, lease_s)
        if held is not None:
            return held
        time.sleep(0.05)
    raise AssertionError(f"{job} was never handed over to {node}")


def test_of_two_claimers_one_wins_until_it_lets_go(engine: Engine) -> None:
    first = claims.claim(engine, "lifecycle", "node-a", 60)
    assert first is not None
    assert claims.claim(engine, "lifecycle", "node-b", 60) is None
    assert claims.claim(engine, "lifecycle", "node-a", 60) is None  # another holding, too
    assert claims.holder_of(engine, "lifecycle") == "node-a"
    assert claims.claim(engine, "review", "node-b", 60) is not None  # other jobs are free

    claims.release(engine, first)

    second = claims.claim(engine, "lifecycle", "node-b", 60)
    assert second is not None
    assert [(r.node, r.outcome) for r in claims.history(engine, "lifecycle")] == [
        ("node-b", None), ("node-a", claims.DONE)]


def test_a_lease_run_out_hands_the_job_over(engine: Engine) -> None:
    dead = claims.claim(engine, "sync:mail", "node-a", 0.5)
    assert dead is not None
    assert claims.claim(engine, "sync:mail", "node-b", 60) is None

    taken = _until_claimed(engine, "sync:mail", "node-b", 60)

    assert claims.renew(engine, dead, 60) is None  # the dead node's lease is not its any more
    claims.release(engine, dead)  # nor is the job: releasing it changes nothing
    assert claims.holder_of(engine, "sync:mail") == "node-b"
    newest, lapsed = claims.history(engine, "sync:mail")
    assert (newest.id, newest.node, newest.ended_at) == (taken.run_id, "node-b", None)
    assert (lapsed.node, lapsed.outcome, lapsed.ended_at) == ("node-a", claims.LAPSED,
                                                              dead.expires_at)
    assert lapsed.ended_at is not None and lapsed.ended_at <= newest.started_at


def server_clock(engine: Engine) -> float:
    with engine.connect() as conn:
        return database.clock(conn)


def test_a_renewed_lease_keeps_the_job(engine: Engine) -> None:
    settings = ServeSettings(node="node-a", lease_s=1.5)
    lease = claims.hold(engine, settings, "review")
    assert lease is not None
    with lease:
        # Past the first lease: renewals keep it (each a third of the lease apart).
        deadline = lease.claim.expires_at + 1.0
        while server_clock(engine) < deadline:
            assert claims.claim(engine, "review", "node-b", 60) is None
            time.sleep(0.1)
        assert not lease.lost()
    assert claims.history(engine, "review")[0].outcome == claims.DONE
    assert claims.claim(engine, "review", "node-b", 60) is not None


def test_a_periodic_job_is_taken_once_a_period(engine: Engine) -> None:
    settings = ServeSettings(node="node-a", lease_s=60)
    lease = claims.hold(engine, settings, "storage-sampler", every_s=3600)
    assert lease is not None
    with lease:
        pass
    # Node b ticks on the same schedule: the job ran within the period, so it waits.
    assert claims.hold(engine, ServeSettings(node="node-b"), "storage-sampler",
                       every_s=3600) is None
    assert claims.hold(engine, ServeSettings(node="node-b"), "storage-sampler",
                       every_s=0) is not None


def test_a_failed_run_is_recorded_failed(engine: Engine) -> None:
    lease = claims.hold(engine, ServeSettings(node="node-a"), "export:7")
    assert lease is not None
    with pytest.raises(RuntimeError), lease:
        raise RuntimeError("the export failed")
    assert claims.history(engine, "export:7")[0].outcome == claims.FAILED
    assert claims.holder_of(engine, "export:7") is None


def _race(url: str, password_file: str, node: str, start: object, won: object) -> None:
    engine = database.open_engine(Path("unused.sqlite"), url, password_file)
    start.wait(60)  # type: ignore[attr-defined]
    for job in range(RACED_JOBS):
        if claims.claim(engine, f"disposition:{job}", node, 60) is not None:
            won.put(job)  # type: ignore[attr-defined]
    engine.dispose()


def test_racing_processes_get_each_job_once_on_postgresql(pg_catalog: Catalog,
                                                          tmp_path: Path) -> None:
    engine = database.open_engine(tmp_path / "unused.sqlite", pg_catalog.url,
                                  str(pg_catalog.password_file))
    vault_format.create(engine)
    context = multiprocessing.get_context("spawn")
    start, won = context.Event(), context.Queue()
    racers = [context.Process(target=_race, args=(pg_catalog.url, str(pg_catalog.password_file),
                                                  f"node-{n}", start, won))
              for n in range(RACERS)]
    for process in racers:
        process.start()
    start.set()
    for process in racers:
        process.join(300)
        assert process.exitcode == 0
    winners: list[int] = []
    while len(winners) < RACED_JOBS and not won.empty():
        winners.append(won.get(timeout=10))
    assert sorted(winners) == list(range(RACED_JOBS))
    assert len(claims.history(engine)) == RACED_JOBS
    engine.dispose()


def test_a_job_being_decided_elsewhere_is_skipped_not_waited_for(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    engine = database.open_engine(tmp_path / "unused.sqlite", pg_catalog.url,
                                  str(pg_catalog.password_file))
    vault_format.create(engine)
    assert claims.claim(engine, "lifecycle", "node-a", 0.01) is not None  # lapses at once
    other = database.open_engine(tmp_path / "unused.sqlite", pg_catalog.url,
                                 str(pg_catalog.password_file))
    with other.connect() as deciding, deciding.begin():
        # Node c is deciding about the job (holds its row): node b moves on at once.
        deciding.execute(select(schema.job_claims).where(schema.job_claims.c.job == "lifecycle")
                         .with_for_update())
        assert claims.claim(engine, "lifecycle", "node-b", 60) is None
    assert claims.claim(engine, "lifecycle", "node-b", 60) is not None
    other.dispose()
    engine.dispose()


def _claim_and_die(where: Where) -> None:
    assert claims.claim(where.open(), "export:3", "node-a", 3600) is not None
    os._exit(0)  # killed: no release, and the lease an hour long


def test_a_claim_of_a_dead_process_of_this_node_is_taken_over_at_once(
        engine: Engine, where: Where) -> None:
    dying = multiprocessing.get_context("spawn").Process(target=_claim_and_die, args=(where,))
    dying.start()
    dying.join(120)
    assert dying.exitcode == 0
    assert claims.claim(engine, "export:3", "node-b", 60) is None  # elsewhere: its lease
    taken = claims.claim(engine, "export:3", "node-a", 60)
    assert taken is not None
    assert [r.outcome for r in claims.history(engine, "export:3")] == [None, claims.LAPSED]
