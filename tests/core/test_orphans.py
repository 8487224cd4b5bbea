"""A SIGKILLed importer or server leaves no process behind: the pipeline's workers, the PST
reading process, the fork server, the resource tracker and the archiver all end with it.

Processes are found in /proc (this test runs on Linux, as mailvault's CI does); a process
that has ended but was not reaped (a zombie under an init that does not reap) is gone.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.outlook.pst_writer import write_pst
from tests.support import MAILVAULT, build_message, run

WAIT_S = 60.0


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(name)] = (int(fields[1]), fields[0])
    return found


def _descendants(pid: int) -> set[int]:
    table = _processes()
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, (pp, state) in table.items() if pp == parent and state != "Z"]
        found.update(children)
        frontier.extend(children)
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pids: set[int]) -> set[int]:
    table = _processes()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _workers_of(pid: int) -> set[int]:
    """The fork server's children among ``pid``'s descendants (the pools' workers)."""
    everyone = _descendants(pid)
    servers = {p for p in everyone if "multiprocessing.forkserver" in _cmdline(p)}
    table = _processes()
    return {p for p in everyone if table.get(p, (0, ""))[0] in servers}


def _kill_noting_descendants(pid: int) -> dict[int, str]:
    """SIGKILL ``pid``; returns its descendants as they were, with their command lines."""
    noted = {child: _cmdline(child) for child in _descendants(pid)}
    os.kill(pid, signal.SIGKILL)
    return noted


@contextmanager
def _cleaned_up(process: subprocess.Popen[bytes]) -> Iterator[dict[int, str]]:
    """Yields a dict to fill with noted processes; whatever of them (and the process) is
    still there when the test ends is killed."""
    noted: dict[int, str] = {}
    try:
        yield noted
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in _alive(set(noted)):
            with suppress(ProcessLookupError):  # it may end between the look and the kill
                os.kill(pid, signal.SIGKILL)
        if process.stdout is not None:
            process.stdout.close()


def test_a_killed_import_leaves_no_process_behind(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    # Enough to keep the import busy while the test looks: the PST has its own reading
    # process, its messages go through the pipeline's workers.
    pst = tmp_path / "big.pst"
    write_pst(pst, 1500)
    process = subprocess.Popen([*MAILVAULT, "import", str(pst), "--vault", str(vault)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "MAILVAULT_INGEST_WORKERS": "2"})
    with _cleaned_up(process) as noted:
        # Two pipeline workers and the PST reading process.
        _wait_for(lambda: process.poll() is not None or len(_workers_of(process.pid)) >= 3,
                  "the workers to start")
        assert process.poll() is None, "the import ended before its workers were seen"
        noted.update(_kill_noting_descendants(process.pid))
        process.wait()
        assert len(noted) >= 5  # fork server, resource tracker, three workers
        _wait_for(lambda: not _alive(set(noted)), "every process of the import to end")


def test_a_killed_archiver_leaves_no_process_behind(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    process = subprocess.Popen([*MAILVAULT, "serve", "--vault", str(vault),
                                "--smtp", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, "MAILVAULT_INGEST_WORKERS": "2"})
    with _cleaned_up(process) as noted:
        port = _smtp_port(process)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            # The archiver's pipeline starts its workers when mail comes.
            client.sendmail("a@example.org", ["b@example.org"], build_message())
        [archiver] = [p for p in _descendants(process.pid)
                      if "multiprocessing.spawn" in _cmdline(p)]
        _wait_for(lambda: len(_workers_of(archiver)) >= 1, "the archiver's workers")
        noted.update(_kill_noting_descendants(archiver))
        noted[archiver] = "archiver"
        assert len(noted) >= 3  # fork server and a worker, and the archiver
        _wait_for(lambda: not _alive(set(noted)), "every process of the archiver to end")
        process.terminate()  # serve has started a new archiver meanwhile; a clean stop
        assert process.wait(WAIT_S) == 0


def _smtp_port(process: subprocess.Popen[bytes]) -> int:
    """The SMTP port serve prints when it listens."""
    assert process.stdout is not None
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline().decode()
        assert line, "serve ended before it listened"
        if "smtp" in line.lower() and "127.0.0.1:" in line:
            return int(line.split("127.0.0.1:")[1].split()[0].strip(".,;)"))
    raise AssertionError("serve did not say where it listens")
