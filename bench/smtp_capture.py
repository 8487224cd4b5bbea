"""SMTP capture benchmark: Postfix's smtp-source against smtp-sink, do-nothing Python SMTP
servers (aiosmtpd, and mailvault's own session discarding everything), and `mailvault serve`
(durable 250), plus time-to-searchable under that load.

    .venv/bin/python bench/smtp_capture.py [--messages N] [--sessions 20] [--size 5000]

For mailvault it reports: accepted msg/s (smtp-source wall time, every 250 after fsync),
archived msg/s (until the last message is committed to the vault and the spool is empty),
the spool's deepest point, and time from 250 to searchable (p50/p95) for probe messages sent
with smtplib every 0.2 s during the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from mailvault.search.query import parse
from mailvault.store import schema
from mailvault.vault import Vault

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 180  # a loaded machine starts serve slowly
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        # utime, stime, and those of children already waited for.
        times[pid] = sum(int(f) for f in fields[11:15]) / ticks
    total = 0.0
    for pid, cpu in times.items():
        walk = pid
        while walk > 1 and walk != root:
            walk = parents.get(walk, 0)
        if walk == root:
            total += cpu
    return total


def smtp_source(port: int, messages: int, sessions: int, size: int,
                to: str = "rcpt@bench.test") -> float:
    """Seconds smtp-source takes to send ``messages`` to ``to`` (every one must get 250)."""
    start = time.monotonic()
    subprocess.run(["smtp-source", "-d", "-s", str(sessions), "-m", str(messages),
                    "-l", str(size), "-f", "sender@bench.test", "-t", to,
                    f"127.0.0.1:{port}"], check=True)
    return time.monotonic() - start


def reference(name: str, command: list[str], port: int, args: argparse.Namespace) -> float:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        wait_listening(port)
        seconds = smtp_source(port, args.messages, args.sessions, args.size)
        cpu = tree_cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait()
    rate = args.messages / seconds
    print(f"{name}: {args.messages} messages in {seconds:.2f} s = {rate:,.0f} msg/s; "
          f"server CPU {cpu * 1000 / args.messages:.2f} ms/msg", flush=True)
    return rate


def mailvault_run(args: argparse.Namespace) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="mailvault-bench-"))
    vault_path = folder / "vault"
    Vault.create(vault_path).close()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mailvault", "serve", "--vault",
                               str(vault_path), "--smtp", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL)
    probes: list[float] = []
    stop = threading.Event()
    deepest = [0]
    try:
        wait_listening(port)
        reader = Vault.open(vault_path)

        def probe() -> None:
            n = 0
            while not stop.is_set():
                token = f"probe{n}x{int(time.time())}"
                raw = (f"From: probe@bench.test\r\nTo: rcpt@bench.test\r\nSubject: {token}\r\n"
                       f"\r\n{token}\r\n").encode()
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    client.sendmail("probe@bench.test", ["rcpt@bench.test"], raw)
                acked = time.monotonic()
                while reader.index.count(parse(f"subject:{token}")) == 0:
                    time.sleep(0.01)
                probes.append(time.monotonic() - acked)
                n += 1
                stop.wait(0.2)

        def watch_spool() -> None:
            while not stop.is_set():
                try:
                    data = json.loads((vault_path / "serve-status.json").read_text())
                    deepest[0] = max(deepest[0], int(data["spool"]["depth"]))
                except (OSError, ValueError, KeyError):
                    pass  # status is rewritten while we read it: the next look will do
                stop.wait(0.5)

        threads = [threading.Thread(target=probe), threading.Thread(target=watch_spool)]
        for thread in threads:
            thread.start()
        start = time.monotonic()
        seconds = smtp_source(port, args.messages, args.sessions, args.size)
        target = args.messages
        while True:
            with reader.engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(schema.provenance).where(
                    schema.provenance.c.data.like("%sender@bench.test%"))).scalar() or 0
            if done >= target:
                break
            time.sleep(0.05)
        archived_s = time.monotonic() - start
        cpu = tree_cpu_seconds(server.pid)
        stop.set()
        for thread in threads:
            thread.join()
        reader.close()
    finally:
        stop.set()
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    probes.sort()
    result = {
        "accepted_per_s": args.messages / seconds,
        "archived_per_s": args.messages / archived_s,
        "spool_depth_max": deepest[0],
        "searchable_p50_s": statistics.median(probes),
        "searchable_p95_s": probes[max(0, int(len(probes) * 0.95) - 1)],
        "probes": len(probes),
        "cpu_ms_per_message": cpu * 1000 / args.messages,
    }
    print(f"mailvault serve: {args.messages} messages accepted in {seconds:.2f} s = "
          f"{result['accepted_per_s']:,.0f} msg/s (250 after fsync); all archived after "
          f"{archived_s:.2f} s = {result['archived_per_s']:,.0f} msg/s; deepest spool "
          f"{deepest[0]}; time to searchable p50 {result['searchable_p50_s']:.2f} s, "
          f"p95 {result['searchable_p95_s']:.2f} s ({len(probes)} probes); server CPU "
          f"(with workers) {result['cpu_ms_per_message']:.2f} ms/msg", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=5000)
    args = parser.parse_args()
    port = free_port()
    reference("smtp-sink", ["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{port}", "256"],
              port, args)
    for kind in ("aiosmtpd", "mailvault"):
        port = free_port()
        reference(f"do-nothing {kind} session",
                  [sys.executable, str(HERE / "smtp_null_server.py"), str(port), kind],
                  port, args)
    mailvault_run(args)


if __name__ == "__main__":
    main()
