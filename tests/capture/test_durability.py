"""Never 250 without storage: disk full gives 4xx and recovers; SIGKILL under load loses no
acknowledged message and archives none twice."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from mailvault.store import schema
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, message_count, wait_until
from tests.full_disk import fill


def test_disk_full_gives_4xx_and_recovers(vault: Vault, small_disk: Path,
                                          serving: Callable[..., Running]) -> None:
    vault.settings.spool.folder = str(small_disk)
    running = serving()
    filler = fill(small_disk)
    acknowledged = []
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        for i in range(5):
            raw = build(f"no room {i}", body="q" * 20_000 + "\r\n")
            try:
                client.sendmail("a@example.org", ["b@example.org"], raw)
                acknowledged.append(raw)
            except smtplib.SMTPDataError as exc:
                assert 400 <= exc.smtp_code < 500
        assert acknowledged == []
        filler.unlink()
        client.sendmail("a@example.org", ["b@example.org"], build("room again"))
    wait_until(lambda: message_count(vault) == 1)
    running.stop()
    status = (vault.path / "serve-status.json").read_text()
    assert "spool full" in status and "no space" in status


SERVER = [sys.executable, "-m", "mailvault", "serve"]


def start_server(vault_path: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([*SERVER, "--vault", str(vault_path), "--smtp", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("listening: smtp "), line
    return process, int(line.rsplit(":", 1)[1])


@pytest.mark.slow
def test_sigkill_under_load_loses_no_acknowledged_message(vault_path: Path) -> None:
    Vault.create(vault_path).close()
    path = vault_path
    process, port = start_server(path)
    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    current = {"port": port}

    def client(worker: int) -> None:
        i = 0
        while not stop.is_set():
            raw = build(f"load {worker}-{i}", body=f"payload {worker} {i}\r\n" * 60)
            try:
                with smtplib.SMTP("127.0.0.1", current["port"], timeout=10) as smtp:
                    smtp.sendmail("a@example.org", ["b@example.org"], raw)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)  # not acknowledged: send the same message again
                continue
            with lock:
                acknowledged.add(hashlib.sha256(raw).hexdigest())
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acknowledged) > 300, what="load before the kill")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.stdout is not None
    process.stdout.close()
    process, current["port"] = start_server(path)
    wait_until(lambda: len(acknowledged) > 600, what="load after the restart")
    stop.set()
    for thread in threads:
        thread.join()
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    assert process.stdout is not None
    process.stdout.close()
    with Vault.open(path) as reopened, reopened.engine.connect() as conn:
        archived = list(conn.execute(select(schema.messages.c.sha256)).scalars())
    assert len(archived) == len(set(archived))
    missing = acknowledged - set(archived)
    assert not missing, f"{len(missing)} acknowledged messages were lost"


def test_a_killed_archiver_is_started_again(vault: Vault,
                                            serving: Callable[..., Running]) -> None:
    running = serving()
    (archiver,) = [p for p in multiprocessing.active_children()
                   if p.name == "mailvault-archiver"]
    assert archiver.pid is not None
    os.kill(archiver.pid, signal.SIGKILL)
    archiver.join()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        for i in range(3):
            client.sendmail("a@example.org", ["b@example.org"], build(f"after the kill {i}"))
    wait_until(lambda: message_count(vault) == 3, what="the restarted archiver")
    running.stop()
    status = (vault.path / "serve-status.json").read_text()
    assert "the archiver process stopped (exit code -9)" in status
