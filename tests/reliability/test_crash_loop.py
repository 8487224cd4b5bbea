"""SIGKILL at random moments during an import, SMTP capture, a tier move and a disposition;
after each kill the command is run again (or the server restarted) and every invariant of
``invariants.check_vault`` must hold.

The default run kills each operation ``QUICK_KILLS`` times, so the loop cannot rot; the slow
form kills each ``SLOW_KILLS`` times (``MAILVAULT_CRASH_KILLS`` overrides it). The seed is
printed; ``MAILVAULT_CRASH_SEED`` replays a run.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.reliability import processes
from tests.reliability.invariants import check_vault
from tests.reliability.processes import catalog_scalar, kill_at, moment, seeded
from tests.reliability.serving import Senders, Server
from tests.support import build_message, invoke, write_mbox

QUICK_KILLS = 2
SLOW_KILLS = 50
PER_ROUND = 60
BATCH = {"MAILVAULT_INGEST_BATCH_SIZE": "8", "MAILVAULT_INGEST_WORKERS": "1"}
OLD = datetime(2001, 5, 6, 7, 8, tzinfo=UTC)
NEW = datetime.now(UTC)


def kills(quick: bool) -> int:
    return QUICK_KILLS if quick else int(os.environ.get("MAILVAULT_CRASH_KILLS", SLOW_KILLS))


def round_messages(tag: str, number: int, count: int = PER_ROUND,
                   date: datetime = OLD) -> list[bytes]:
    return [build_message(subject=f"{tag} round {number} message {i}", date=date,
                          body=f"{tag} {number} {i}\n" + "filler text line\n" * (20 + i))
            for i in range(count)]


def digests(messages: list[bytes]) -> set[str]:
    return {hashlib.sha256(m).hexdigest() for m in messages}


def import_loop(tmp_path: Path, rounds: int) -> None:
    rng = seeded("import")
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    present: set[str] = set()
    landed = 0
    for number in range(rounds):
        messages = round_messages("import", number)
        mbox = tmp_path / f"round-{number}.mbox"
        write_mbox(mbox, messages)
        process = processes.start("import", mbox, "--vault", vault, env=BATCH)
        landed += kill_at(process, lambda: catalog_scalar(vault, "select count(*) from "
                                                          "messages"),
                          moment(rng, len(present) + PER_ROUND))
        again = invoke("import", mbox, "--vault", vault, "--json", env=BATCH)
        assert again.exit_code == 0, again.stderr
        present |= digests(messages)
        facts = check_vault(vault, present=present)
        assert facts.messages == len(present)
    print(f"import: {landed} of {rounds} kills landed before the import ended")


def smtp_loop(tmp_path: Path, rounds: int) -> None:
    rng = seeded("smtp")
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    present: set[str] = set()
    for number in range(rounds):
        server = Server.start(vault)
        current = {"server": server}
        with Senders(lambda current=current: current["server"].port,
                     tag=f"smtp{number}") as senders:
            at = moment(rng, 40, delay_s=1.0)
            kill_at(server.process, senders.count, at)
            server.kill()
            current["server"] = Server.start(vault)
            before = senders.count()
            # Some more after the restart, so the replayed spool and new mail mix.
            processes.wait_for(lambda before=before: senders.count() >= before + 5,
                               "mail after restart")
        acknowledged = set(senders.acknowledged)
        wanted = len(present | acknowledged)
        processes.wait_for(lambda wanted=wanted: catalog_scalar(
            vault, "select count(*) from messages") >= wanted, "the restarted archiver")
        current["server"].stop()
        present |= acknowledged
        facts = check_vault(vault, present=present)
        assert facts.messages == len(present)


def tier_loop(tmp_path: Path, rounds: int) -> None:
    rng = seeded("tier move")
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    messages = round_messages("tier", 0, count=150)
    write_mbox(tmp_path / "all.mbox", messages)
    assert invoke("import", tmp_path / "all.mbox", "--vault", vault).exit_code == 0
    env = {"MAILVAULT_TIERS_MOVE_BATCH": "10", "MAILVAULT_TIERS_DEEP_CHUNK_MB": "1"}
    landed = 0
    for number in range(rounds):
        target = ("open", "deep", "active")[number % 3]
        process = processes.start("tier", "move", "", "--to", target, "--vault", vault,
                                  env=env)
        landed += kill_at(process, lambda target=target: catalog_scalar(
            vault, "select count(*) from messages where tier = ?", target),
            moment(rng, len(messages)))
        resumed = invoke("tier", "resume", "--vault", vault, env=env)
        assert resumed.exit_code == 0, resumed.text
        check_vault(vault, present=digests(messages))
        in_target = catalog_scalar(vault, "select count(*) from messages where tier = ?",
                                   target)
        if in_target != len(messages):  # killed before the job was recorded: run it again
            moved = invoke("tier", "move", "", "--to", target, "--vault", vault, env=env)
            assert moved.exit_code == 0, moved.text
        assert catalog_scalar(vault, "select count(*) from messages where tier = ?",
                              target) == len(messages)
    check_vault(vault, present=digests(messages))
    print(f"tier move: {landed} of {rounds} kills landed before the move ended")


def disposition_loop(tmp_path: Path, rounds: int) -> None:
    rng = seeded("disposition")
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    assert invoke("retention", "default", "--period", "1y", "--vault", vault).exit_code == 0
    kept: set[str] = set()
    disposed: set[str] = set()
    landed = 0
    for number in range(rounds):
        old = round_messages("expired", number)
        new = round_messages("current", number, count=10, date=NEW)
        write_mbox(tmp_path / f"round-{number}.mbox", old + new)
        assert invoke("import", tmp_path / f"round-{number}.mbox", "--vault",
                      vault).exit_code == 0
        process = processes.start("dispose", "--vault", vault)
        landed += kill_at(process, lambda: catalog_scalar(
            vault, "select count(*) from tombstones"), moment(rng, len(disposed) + len(old)))
        again = invoke("dispose", "--vault", vault, "--json")
        assert again.exit_code == 0, again.text
        kept |= digests(new)
        disposed |= digests(old)
        facts = check_vault(vault, present=kept, absent=disposed)
        assert facts.messages == len(kept)
        assert disposed <= facts.tombstones
    print(f"disposition: {landed} of {rounds} kills landed before the run ended")


LOOPS = {"import": import_loop, "smtp": smtp_loop, "tier-move": tier_loop,
         "disposition": disposition_loop}


# A loop starts dozens of processes (each pays Python's start-up): minutes on a loaded machine.
@pytest.mark.timeout(600)
@pytest.mark.parametrize("operation", sorted(LOOPS))
def test_killed_operations_keep_every_invariant(tmp_path: Path, operation: str) -> None:
    LOOPS[operation](tmp_path, kills(quick=True))


@pytest.mark.slow
@pytest.mark.timeout(0)
@pytest.mark.parametrize("operation", sorted(LOOPS))
def test_fifty_kills_per_operation(tmp_path: Path, operation: str) -> None:
    LOOPS[operation](tmp_path, kills(quick=False))
