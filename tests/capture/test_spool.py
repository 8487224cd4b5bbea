"""The spool on its own: records survive reopening, torn tails are ignored, segments go only
once committed, and a restarted `serve` replays what the vault did not commit."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest import MonkeyPatch
from sqlalchemy import func, select

from mailvault.capture.spool import SYNC_INTERVAL_S, Position, Spool, read_spans, segment_path
from mailvault.records import Provenance
from mailvault.serve import spool_folder
from mailvault.store import schema
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, message_count, wait_until

PROV = Provenance(kind="smtp", source="127.0.0.1:25", envelope_from="a@example.org",
                  envelope_to=("b@example.org",))


def store_all(spool: Spool, raws: list[bytes]) -> list[Position]:
    async def run() -> list[Position]:
        return list(await asyncio.gather(*(spool.store(r, PROV) for r in raws)))

    return asyncio.run(run())


def test_records_come_back_after_reopening(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, 0)
    spool.start()
    raws = [build(f"message {i}") for i in range(50)]
    store_all(spool, raws)
    spool.close()
    reopened = Spool(tmp_path, 1 << 20, 0)
    records = read_spans(tmp_path, reopened.readable(Position(0, 0), 0), 1000)
    assert [r.raw for r in records] == raws
    assert records[0].provenance == PROV
    assert reopened.state().depth == 50


def test_a_torn_record_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, 0)
    spool.start()
    store_all(spool, [build("whole"), build("torn")])
    spool.close()
    path = segment_path(tmp_path, 1)
    os.truncate(path, path.stat().st_size - 7)
    records = read_spans(tmp_path, Spool(tmp_path, 1 << 20, 0).readable(Position(0, 0), 0),
                         1000)
    assert [r.raw for r in records] == [build("whole")]


def test_segments_are_deleted_only_when_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 16, 0)  # small segments: several files
    spool.start()
    raws = [build(f"message {i}", body="z" * 5000 + "\r\n") for i in range(40)]
    positions = store_all(spool, raws)
    segments = sorted({p.segment for p in positions})
    assert len(segments) > 2
    middle = positions[len(positions) // 2]
    spool.committed(middle)
    spool.close()
    left = sorted(int(p.stem) for p in tmp_path.glob("*.seg"))
    assert left == [n for n in segments if n >= middle.segment]
    reopened = Spool(tmp_path, 1 << 16, 0)
    assert reopened.state().depth == sum(1 for p in positions if p.segment >= middle.segment)
    reopened.committed(positions[-1])
    assert not list(tmp_path.glob("*.seg"))


def test_spool_limit_refuses_with_storage_full(tmp_path: Path) -> None:
    from mailvault.errors import StorageFullError

    spool = Spool(tmp_path, 1 << 20, 20_000)
    spool.start()
    store_all(spool, [build("fits", body="a" * 10_000)])
    try:
        with pytest.raises(StorageFullError):
            store_all(spool, [build("does not fit", body="b" * 10_000)])
    finally:
        spool.close()


def test_every_provenance_field_comes_back_from_a_record(tmp_path: Path) -> None:
    # Records leave out the fields at their defaults: set ones must all come back, the
    # left-out ones as their defaults.
    full = Provenance(
        kind="smtp", source="[::1]:2525", folder="INBOX", account="journal", item="item 7",
        uidvalidity=0, uid=0, internal_date=datetime(2021, 3, 4, 10, 30, tzinfo=UTC),
        flags=("\\Seen",), envelope_from="", envelope_to=("b@example.org", "c@example.org"),
        client_address="::1", client_name="mx.example.org", helo="mx.example.org",
        tls="TLSv1.3 TLS_AES_256_GCM_SHA384", auth_user="jörg",
        received_at=datetime(2021, 3, 4, 10, 31, 5, 123456, tzinfo=UTC),
        extra=(("delivered-to", "b@example.org"), ("journal", "exchange")))
    bare = Provenance(kind="smtp", source="")
    spool = Spool(tmp_path, 1 << 20, 0)
    spool.start()

    async def run() -> None:
        await spool.store(build("full"), full)
        await spool.store(build("bare"), bare)

    asyncio.run(run())
    spool.close()
    records = read_spans(tmp_path, Spool(tmp_path, 1 << 20, 0).readable(Position(0, 0), 0), 10)
    assert [r.provenance for r in records] == [full, bare]


def test_the_limit_frees_up_as_segments_are_committed(tmp_path: Path) -> None:
    from mailvault.errors import StorageFullError

    spool = Spool(tmp_path, 1 << 16, 150_000)  # one 45 KB message per 64 KB segment
    spool.start()
    try:
        positions = [store_all(spool, [build(f"m{i}", body="c" * 45_000)])[0]
                     for i in range(3)]
        with pytest.raises(StorageFullError):
            store_all(spool, [build("over the limit", body="d" * 45_000)])
        spool.committed(positions[1])  # two sealed segments deleted: room again
        assert spool.state().segments == 1
        store_all(spool, [build("fits again", body="d" * 45_000)])
    finally:
        spool.close()


def test_sessions_share_sync_passes(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    # 20 sessions storing one message after another: a pass starts at most every
    # SYNC_INTERVAL_S, however fast the disk, so each fsync covers several sessions.
    fsyncs: list[float] = []
    real_fsync = os.fsync

    def counted(fd: int) -> None:
        fsyncs.append(time.monotonic())
        real_fsync(fd)

    spool = Spool(tmp_path, 1 << 24, 0)
    spool.start()
    store_all(spool, [build("creates the segment")])  # and fsyncs the folder: not counted
    monkeypatch.setattr(os, "fsync", counted)

    async def session(n: int) -> None:
        for i in range(20):
            await spool.store(build(f"session {n} message {i}"), PROV)

    async def run() -> None:
        await asyncio.gather(*(session(n) for n in range(20)))

    asyncio.run(run())
    spool.close()
    gaps = [b - a for a, b in itertools.pairwise(fsyncs)]
    assert min(gaps) >= SYNC_INTERVAL_S * 0.9  # one segment: one fsync per pass
    assert len(fsyncs) < 400 / 4


def test_serve_replays_the_spool_on_start(vault: Vault,
                                          serving: Callable[..., Running]) -> None:
    spool = Spool(spool_folder(vault), 1 << 20, 0)
    spool.start()
    raws = [build(f"left in the spool {i}") for i in range(30)]
    store_all(spool, raws + raws[:5])  # the same bytes twice: archived once
    spool.close()
    (segment,) = spool_folder(vault).glob("*.seg")
    kept = segment.read_bytes()
    running = serving()
    wait_until(lambda: message_count(vault) == 30, what="the replayed messages")
    running.stop()
    assert not list(spool_folder(vault).glob("*.seg"))
    arrivals = provenance_count(vault)
    # A crash after the commit but before the segment was deleted: replayed, nothing added.
    segment.write_bytes(kept)
    running = serving()
    wait_until(lambda: not segment.exists(), what="the segment replayed and deleted")
    running.stop()
    assert message_count(vault) == 30
    assert provenance_count(vault) == arrivals


def provenance_count(vault: Vault) -> int:
    with vault.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.provenance)).scalar()
                   or 0)


def test_in_flow_control_holds_new_mail_while_the_vault_is_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, 0, in_flow_depth=2, in_flow_delay_s=10.0)
    spool.start()
    positions = store_all(spool, [build("one"), build("two"), build("three")])

    async def held_then_released() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        store = asyncio.ensure_future(spool.store(build("four"), PROV))
        await asyncio.sleep(0.2)
        held = not store.done()  # three waiting for the vault, more than in_flow_depth
        started = loop.time()
        await loop.run_in_executor(None, spool.committed, positions[0])  # the vault catches up
        await store
        return held, loop.time() - started

    held, waited = asyncio.run(held_then_released())
    assert held and waited < 5.0  # released by the commit, not by the 10 s delay
    assert spool.state().depth == 3
    spool.close()


def test_in_flow_control_gives_up_waiting_when_the_vault_does_not_move(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, 0, in_flow_depth=1, in_flow_delay_s=0.2)
    spool.start()
    store_all(spool, [build("one"), build("two")])
    started = time.monotonic()
    store_all(spool, [build("three")])  # spooled after the delay: the vault may be down
    assert time.monotonic() - started >= 0.2
    assert spool.state().depth == 3
    spool.close()


def test_text_that_is_not_utf8_is_recorded_readable_with_its_bytes(tmp_path: Path) -> None:
    # What a door decoded with surrogateescape (bytes that are not UTF-8) is stored, not a
    # UnicodeEncodeError: shown escaped, the bytes kept in extra.
    def received(data: bytes) -> str:
        return data.decode("utf-8", "surrogateescape")

    odd = Provenance(kind="smtp", source="127.0.0.1:25", envelope_from=received(b"\xff@bad"),
                     envelope_to=("b@example.org", received(b"j\xe9@x.org")),
                     helo=received(b"h\xe9st"), extra=(("queue_id", received(b"Q\x80")),))
    spool = Spool(tmp_path, 1 << 20, 0)
    spool.start()
    asyncio.run(spool.store(b"Subject: x\r\n\r\nx\r\n", odd))
    spool.close()
    (record,) = read_spans(tmp_path, Spool(tmp_path, 1 << 20, 0).readable(Position(0, 0), 0),
                           10)
    kept = record.provenance
    assert kept.envelope_from == "\\xff@bad" and kept.helo == "h\\xe9st"
    assert kept.envelope_to == ("b@example.org", "j\\xe9@x.org")
    extra = dict(kept.extra)
    assert extra["queue_id"] == "Q\\x80" and base64.b64decode(extra["queue_id_bytes"]) == b"Q\x80"
    assert base64.b64decode(extra["envelope_from_bytes"]) == b"\xff@bad"
    assert [base64.b64decode(b) for b in json.loads(extra["envelope_to_bytes"])] == [
        b"b@example.org", b"j\xe9@x.org"]
    assert base64.b64decode(extra["helo_bytes"]) == b"h\xe9st"
