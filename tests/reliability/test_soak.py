"""Soak: `serve` under steady mixed load -- SMTP at a fixed rate, its scheduler syncing an IMAP
mailbox that keeps growing, searches, a tier move and a disposition from the command line --
while the serving process tree's RSS, open files and the spool are sampled. At the end every
count is exact and every invariant holds.

The default run soaks for ``QUICK_S`` seconds; the slow form for ``MAILVAULT_SOAK_S`` (an hour
by default). ``MAILVAULT_SOAK_REPORT=FILE`` writes the figures as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailvault.sources import registry
from mailvault.sources.definitions import build
from mailvault.vault import Vault
from tests.reliability.invariants import check_vault
from tests.reliability.processes import wait_for
from tests.reliability.resources import folder_bytes, usage
from tests.reliability.serving import Senders, Server
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import new_mailbox
from tests.support import build_message, catalog_sql, invoke, write_mbox, write_settings

QUICK_S = 60
SLOW_S = 3600
RATE = 20.0  # SMTP messages a second, all senders together
SAMPLE_S = 2.0
IMAP_EVERY_S = 20.0
IMAP_BATCH = 25
EXPIRED = 100
# Growth allowed between the second sampled quarter (the first holds the start: the archiver
# and its workers start when mail first comes) and the last: caches and the index's segments
# settle, a leak keeps growing.
RSS_SLACK = 1.5
FD_SLACK = 16
# Small spool segments, so that they fill, are sealed and are deleted many times in a soak:
# a segment is deleted once sealed and wholly archived, so the spool holds about the one
# being written and the one just sealed; more means deletion stopped.
SEGMENT_MB = 4
SPOOL_CAP = 3 * SEGMENT_MB * 1024 * 1024


@dataclass
class Figures:
    """What a soak measured; printed, and written where MAILVAULT_SOAK_REPORT says."""

    seconds: float = 0.0
    smtp_acknowledged: int = 0
    smtp_refused: int = 0
    imap_appended: int = 0
    searches: int = 0
    disposed: int = 0
    messages_at_end: int = 0
    peak_rss_mb: float = 0.0
    second_quarter_rss_mb: float = 0.0
    last_quarter_rss_mb: float = 0.0
    peak_fds: int = 0
    second_quarter_fds: int = 0
    last_quarter_fds: int = 0
    peak_spool_kb: float = 0.0
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        del data["samples"]
        return data


def soak(tmp_path: Path, server: Dovecot, seconds: float) -> Figures:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    write_settings(vault, f"[spool]\nsegment_mb = {SEGMENT_MB}\n")
    # Mail from 2001 is past a 10-year default; the load's mail (2021) and IMAP mail (now)
    # are not.
    assert invoke("retention", "default", "--period", "10y", "--vault", vault).exit_code == 0
    expired = [build_message(subject=f"expired {i}", date=datetime(2001, 1, 2, tzinfo=UTC),
                             body=f"old text {i}\n" * 30) for i in range(EXPIRED)]
    write_mbox(tmp_path / "expired.mbox", expired)
    assert invoke("import", tmp_path / "expired.mbox", "--vault", vault).exit_code == 0
    mailbox = new_mailbox(server, "soak")
    with Vault.open(vault) as opened:
        registry.add(opened, build({
            "name": "dovecot", "kind": "imap", "host": "127.0.0.1", "port": server.imap,
            "tls": "starttls", "user": mailbox.address, "ca_file": str(server.ca_file),
            "interval": "1m"}), mailbox.password, "test")
    imap: set[str] = set()
    figures = Figures()
    spool = vault / "spool"

    def append_imap() -> None:
        # CRLF, as IMAP servers keep mail (Dovecot would store LF mail with CRLF, another
        # SHA-256).
        batch = [build_message(subject=f"imap {len(imap) + i}", date=datetime.now(UTC),
                               body=f"imap body {len(imap) + i}\n" * 20).replace(b"\n", b"\r\n")
                 for i in range(IMAP_BATCH)]
        mailbox.fill({"INBOX": batch})
        imap.update(hashlib.sha256(raw).hexdigest() for raw in batch)

    append_imap()
    running = Server.start(vault)
    started = time.monotonic()
    moved = disposed = False
    next_imap = started + IMAP_EVERY_S
    try:
        with Senders(lambda: running.port, tag="soak", threads=2, rate=RATE) as senders:
            while (now := time.monotonic()) - started < seconds:
                used = usage(running.process.pid)
                figures.samples.append((now - started, used.rss, used.fds,
                                        folder_bytes(spool)))
                searched = invoke("count", "from:load3@example.org", "--vault", vault)
                assert searched.exit_code == 0, searched.text
                figures.searches += 1
                if now >= next_imap and now - started < seconds * 0.8:
                    append_imap()
                    next_imap += IMAP_EVERY_S
                if not moved and now - started > seconds / 3:
                    tiered = invoke("tier", "move", "from:load1@example.org", "--to", "open",
                                    "--vault", vault)
                    assert tiered.exit_code == 0, tiered.text
                    moved = True
                if not disposed and now - started > seconds * 2 / 3:
                    run = invoke("dispose", "--vault", vault, "--json")
                    assert run.exit_code == 0, run.text
                    figures.disposed = int(run.json()["disposed"])
                    disposed = True
                time.sleep(SAMPLE_S)
        figures.seconds = time.monotonic() - started
        acknowledged = set(senders.acknowledged)
        figures.smtp_acknowledged, figures.smtp_refused = len(acknowledged), senders.refused
        figures.imap_appended = len(imap)
        wanted = acknowledged | imap
        # The scheduler syncs every minute: the last IMAP batch may need one more pass.
        wait_for(lambda: wanted <= archived(vault), "the last mail to be archived",
                 timeout=180)
        running.stop()
    except BaseException:
        running.kill()
        raise
    finally:
        summarise(figures)
    expired_hashes = {hashlib.sha256(raw).hexdigest() for raw in expired}
    facts = check_vault(vault, present=wanted, absent=expired_hashes)
    figures.messages_at_end = facts.messages
    print("soak: messages at the end", facts.messages)
    report = os.environ.get("MAILVAULT_SOAK_REPORT")
    if report:
        Path(report).write_text(json.dumps(asdict(figures), indent=1))
    assert figures.disposed == EXPIRED
    assert facts.messages == len(wanted)
    assert figures.smtp_refused == 0
    bounded(figures)
    return figures


def archived(vault: Path) -> set[str]:
    """The SHA-256 of every message in the catalog, read without opening the vault."""
    return {row[0] for row in catalog_sql(vault, "select sha256 from messages")}


def summarise(figures: Figures) -> None:
    samples = figures.samples or [(0.0, 0, 0, 0)]
    quarter = max(1, len(samples) // 4)
    figures.peak_rss_mb = max(s[1] for s in samples) / 2**20
    second = samples[quarter:2 * quarter] or samples
    figures.second_quarter_rss_mb = max(s[1] for s in second) / 2**20
    figures.last_quarter_rss_mb = max(s[1] for s in samples[-quarter:]) / 2**20
    figures.peak_fds = max(s[2] for s in samples)
    figures.second_quarter_fds = max(s[2] for s in second)
    figures.last_quarter_fds = max(s[2] for s in samples[-quarter:])
    figures.peak_spool_kb = max(s[3] for s in samples) / 1024
    print("soak:", json.dumps(figures.summary()))


def bounded(figures: Figures) -> None:
    """RSS and open files settle instead of growing with the mail; the spool stays small."""
    assert figures.last_quarter_rss_mb <= figures.second_quarter_rss_mb * RSS_SLACK, (
        f"RSS grew from {figures.second_quarter_rss_mb:.0f} MB to "
        f"{figures.last_quarter_rss_mb:.0f} MB")
    assert figures.last_quarter_fds <= figures.second_quarter_fds + FD_SLACK, (
        f"open files grew from {figures.second_quarter_fds} to {figures.last_quarter_fds}")
    assert figures.peak_spool_kb * 1024 <= SPOOL_CAP


@pytest.mark.timeout(QUICK_S + 400)
def test_soak_quick(tmp_path: Path, dovecot_server: Dovecot) -> None:
    soak(tmp_path, dovecot_server, QUICK_S)


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_soak_long(tmp_path: Path, dovecot_server: Dovecot) -> None:
    soak(tmp_path, dovecot_server, float(os.environ.get("MAILVAULT_SOAK_S", SLOW_S)))
