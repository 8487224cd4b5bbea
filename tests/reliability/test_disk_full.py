"""A full disk at each writer in turn, each on a small tmpfs of its own: the Active volumes,
the Open tier's volumes (a tier move), the catalog, and an export's folder (the spool and the
index have theirs in tests/capture and tests/core). Each gives 4xx (SMTP) or one clear
sentence (command line), loses nothing acknowledged, and resumes once space returns."""

from __future__ import annotations

import hashlib
import os
import smtplib
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from mailvault.capture.status import STALE_AFTER_S, read_status, write_status
from mailvault.cli.health import describe_status
from tests.full_disk import fill, tmpfs, top_up
from tests.reliability.invariants import check_vault
from tests.reliability.processes import catalog_scalar, wait_for
from tests.reliability.serving import Server, smtp_message
from tests.support import build_message, invoke, run, sqlite_only, write_mbox, write_settings

COUNT = 40


def incompressible(tag: str, count: int = COUNT) -> list[bytes]:
    """Messages of about 12 KB that zstd cannot shrink, so they fill a disk."""
    return [build_message(subject=f"{tag} {i}", body=os.urandom(4500).hex() + "\n")
            for i in range(count)]


def digests(messages: list[bytes]) -> set[str]:
    return {hashlib.sha256(m).hexdigest() for m in messages}


def one_sentence(result: object) -> str:
    """The last line of a failed command's stderr, checked to be a sentence, no traceback."""
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("mailvault: ") and last.endswith("."), stderr
    return last


def status_text(vault: Path) -> str:
    """What `serve` last wrote about itself (its status file, rewritten every second)."""
    try:
        return (vault / "serve-status.json").read_text()
    except FileNotFoundError:
        return ""


@pytest.fixture
def disks(tmp_path: Path) -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_active_volumes_full_under_import_then_resume(tmp_path: Path,
                                                     disks: ExitStack) -> None:
    vault = tmp_path / "vault"
    volumes = disks.enter_context(tmpfs(tmp_path / "active", "4m"))
    assert invoke("init", "--vault", vault).exit_code == 0
    write_settings(vault, f'[tiers]\nactive_folder = "{volumes}"\n')
    first = incompressible("before")
    write_mbox(tmp_path / "first.mbox", first)
    assert invoke("import", tmp_path / "first.mbox", "--vault", vault).exit_code == 0
    filler = fill(volumes)
    late = incompressible("late")
    write_mbox(tmp_path / "late.mbox", late)
    sentence = one_sentence(run("import", tmp_path / "late.mbox", "--vault", vault))
    assert "disk is full" in sentence, sentence
    assert catalog_scalar(vault, "select count(*) from messages") == COUNT
    check_vault(vault, present=digests(first))
    filler.unlink()
    again = invoke("import", tmp_path / "late.mbox", "--vault", vault, "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["archived"] == COUNT
    check_vault(vault, present=digests(first + late))


def test_active_volumes_full_under_serve_keeps_acknowledged_mail(tmp_path: Path,
                                                                disks: ExitStack) -> None:
    """The spool has room, so SMTP still says 250 (the mail is durable there); the archiver
    retries until the volumes have room again, and then archives every message once."""
    vault = tmp_path / "vault"
    volumes = disks.enter_context(tmpfs(tmp_path / "active", "2m"))
    assert invoke("init", "--vault", vault).exit_code == 0
    write_settings(vault, f'[tiers]\nactive_folder = "{volumes}"\n')
    filler = fill(volumes)
    server = Server.start(vault)
    sent = [smtp_message("volume-full", i, body_lines=200) for i in range(COUNT)]
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            for raw in sent:
                client.sendmail("a@example.org", ["b@example.org"], raw)
        wait_for(lambda: "disk is full" in status_text(vault), "the archiver to meet the full "
                 "volume disk")
        assert catalog_scalar(vault, "select count(*) from messages") == 0
        filler.unlink()
        wait_for(lambda: catalog_scalar(vault, "select count(*) from messages") == COUNT,
                 "the archiver once space returned")
        server.stop()
    finally:
        server.kill()
    check_vault(vault, present=digests(sent))


def test_open_volumes_full_under_a_tier_move_then_resume(tmp_path: Path,
                                                         disks: ExitStack) -> None:
    vault = tmp_path / "vault"
    open_disk = disks.enter_context(tmpfs(tmp_path / "open", "2m"))
    assert invoke("init", "--vault", vault).exit_code == 0
    write_settings(vault, f'[tiers]\nopen_folder = "{open_disk}"\n'
                          'move_batch = 10\n')
    messages = incompressible("tiered", 60)
    write_mbox(tmp_path / "all.mbox", messages)
    assert invoke("import", tmp_path / "all.mbox", "--vault", vault).exit_code == 0
    filler = fill(open_disk)
    sentence = one_sentence(run("tier", "move", "", "--to", "open", "--vault", vault))
    assert "disk is full" in sentence, sentence
    moved = catalog_scalar(vault, "select count(*) from messages where tier = 'open'")
    assert moved < 60
    filler.unlink()
    # More room than the 2 MB disk had: grow it by removing the filler and resuming.
    resumed = invoke("tier", "resume", "--vault", vault)
    assert resumed.exit_code == 0, resumed.text
    assert catalog_scalar(vault, "select count(*) from messages where tier = 'open'") == 60
    check_vault(vault, present=digests(messages))


# Slower than the others: `status` is asked while full, stale and recovered.
@pytest.mark.timeout(600)
@sqlite_only("the catalog's own disk fills (a PostgreSQL catalog's disk is the server's)")
def test_catalog_disk_full_under_serve_answers_4xx_or_keeps_mail(tmp_path: Path,
                                                                 disks: ExitStack) -> None:
    """The catalog's own disk is full (spool, index and volumes are elsewhere): mail is
    spooled and acknowledged, the archiver retries, and once space returns all of it is
    archived once."""
    root = disks.enter_context(tmpfs(tmp_path / "root", "8m"))
    vault = root / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    write_settings(
        vault, f'[tiers]\nactive_folder = "{elsewhere / "active"}"\n'
        f'[spool]\nfolder = "{elsewhere / "spool"}"\n')
    disks.enter_context(tmpfs(vault / "index", "16m"))
    server = Server.start(vault)
    sent = [smtp_message("catalog-full", i) for i in range(COUNT)]
    acknowledged: list[bytes] = []
    try:
        filler = fill(root)
        with smtplib.SMTP("127.0.0.1", server.port, timeout=30) as client:
            for raw in sent:
                try:
                    client.sendmail("a@example.org", ["b@example.org"], raw)
                    acknowledged.append(raw)
                except smtplib.SMTPDataError as exc:
                    assert 400 <= exc.smtp_code < 500
        # Its status file lives on the full disk too, so `serve` cannot say so there; the
        # catalog shows that nothing could be committed, and `status` says why.
        assert catalog_scalar(vault, "select count(*) from messages") == 0
        full = invoke("status", "--vault", vault)
        assert full.exit_code == 0, full.text
        assert full.text.splitlines()[0] == "the disk is full: the catalog cannot be written."
        # Past the status file's freshness, serve is still said to be running, whether its
        # status file is stale (test_a_status_file_that_cannot_be_rewritten_says_so) or was
        # rewritten in a page the archiver's failed commits freed meanwhile (a race the test
        # cannot hold off: waiting for the stale file alone failed now and then).
        watched_until = time.monotonic() + 1.5 * STALE_AFTER_S
        while time.monotonic() < watched_until:
            top_up(filler)
            assert "capture: running" in invoke("status", "--vault", vault).text
        filler.unlink()
        wait_for(lambda: catalog_scalar(vault, "select count(*) from messages")
                 == len(acknowledged), "the archiver once space returned")
        wait_for(lambda: not any(said in invoke("status", "--vault", vault).text for said in (
            "the catalog cannot be written", "cannot be rewritten")),
            "status to recover once space returned")
        assert invoke("status", "--vault", vault, "--json").json()["catalog_problem"] is None
        server.stop()
    finally:
        server.kill()
    assert acknowledged, "the spool had room: every message should have been acknowledged"
    check_vault(vault, present=digests(acknowledged))


def test_a_status_file_that_cannot_be_rewritten_says_so(tmp_path: Path,
                                                        disks: ExitStack) -> None:
    """A status file past its freshness means a stopped server, unless the vault's disk is
    full: then the server (still alive) is running and its figures are as of the file."""
    root = disks.enter_context(tmpfs(tmp_path / "root", "2m"))
    written = time.time() - 2 * STALE_AFTER_S
    write_status(root, {"pid": os.getpid(), "started_at": written, "updated_at": written,
                        "endpoints": ["smtp 127.0.0.1:2525"]})
    with_room = read_status(root)
    assert with_room is not None and not with_room["running"] and not with_room["stale"]
    fill(root)
    full = read_status(root)
    assert full is not None and full["running"] and full["stale"]
    assert any("cannot be rewritten on the full disk" in line for line in describe_status(full))


def test_export_folder_full_then_resume(tmp_path: Path, disks: ExitStack) -> None:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    messages = incompressible("exported", 60)
    write_mbox(tmp_path / "all.mbox", messages)
    assert invoke("import", tmp_path / "all.mbox", "--vault", vault).exit_code == 0
    disk = disks.enter_context(tmpfs(tmp_path / "exports", "2m"))
    target = disk / "out"
    filler = fill(disk)
    # Leave a little room, so the export starts and then fills the disk.
    os.truncate(filler, filler.stat().st_size - 256 * 1024)
    sentence = one_sentence(run("export", "", "--to", target, "--vault", vault))
    assert "disk is full" in sentence, sentence
    filler.unlink()
    again = invoke("export", "", "--to", target, "--vault", vault, "--json")
    assert again.exit_code == 0, again.text
    assert len(list(target.rglob("*.eml"))) == 60
    check_vault(vault, present=digests(messages))
