"""Gateway mailbox delivery against journal capture, in one `mailvault serve`.

    .venv/bin/python bench/gateway_smtp.py [--messages 3000] [--sessions 20] [--size 5000]
                                           [--rounds 7] [--slices 3]

Postfix's smtp-source (20 sessions, 5 KB messages) sends N messages to the vault's journal
address, then N to one gateway mailbox's address, alternating for ``--rounds`` rounds against
the same server (with ``--slices S``, each kind's N in S runs that alternate with the other
kind's within the round). Both answer 250 only once the message is durable: the journal copy fsynced
in the spool (group commit), the mailbox copy sealed to the mailbox's public key and appended
to the mailbox's segment, fsynced with the group of deliveries appended meanwhile. Before
each run the vault's archiver has committed every journal message sent so far, so neither
run pays for the other's archiving. Reports, for every round, both rates, their ratio
(target >= 0.8 in each round) and the server's CPU per message (which the machine's load
moves far less than the rates): all of it (the SMTP process, the archiver, the gateway writer
process) and the SMTP process's own; then the medians, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smtp_capture import free_port, smtp_source, tree_cpu_seconds, wait_listening

from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.store import schema
from mailvault.vault import Vault

DOMAIN = "gw.bench.test"


def cpu_seconds_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by one process, its own threads only."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_archived(vault_path: Path, count: int) -> None:
    """Until the vault holds ``count`` journal arrivals (the spool drained)."""
    with Vault.open(vault_path) as reader:
        while True:
            with reader.engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(schema.provenance)
                                    ).scalar() or 0
            if done >= count:
                return
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slices", type=int, default=3,
                        help="split each kind's messages of a round into this many runs, "
                             "alternating with the other kind's")
    args = parser.parse_args()
    per_run = args.messages // args.slices
    folder = Path(tempfile.mkdtemp(prefix="mailvault-gateway-bench-"))
    vault_path = folder / "vault"
    Vault.create(vault_path).close()
    with (vault_path / "mailvault.toml").open("a") as toml:
        toml.write(f'\n[gateway]\ndomain = "{DOMAIN}"\n')
    mailboxes = GatewayMailboxes(vault_path / "gateway", DOMAIN)
    info, _password = mailboxes.create("bench")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mailvault", "serve", "--vault",
                               str(vault_path), "--smtp", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL)
    rates: dict[str, list[float]] = {"journal": [], "gateway": []}
    cpu: dict[str, list[float]] = {"journal": [], "gateway": []}
    own_cpu: dict[str, list[float]] = {"journal": [], "gateway": []}
    ratios: list[float] = []
    load_before = os.getloadavg()
    try:
        wait_listening(port)
        journal_sent = 0
        for round_number in range(args.rounds):
            first = ["journal", "gateway"] if round_number % 2 == 0 else ["gateway", "journal"]
            # With slices the kinds alternate within the round too (J G G J J G ...), so a
            # swing of the machine's load lands on both.
            order = [kind for n in range(args.slices)
                     for kind in (first if n % 2 == 0 else first[::-1])]
            seconds = {"journal": 0.0, "gateway": 0.0}
            cpu_seconds = {"journal": 0.0, "gateway": 0.0}
            own_seconds = {"journal": 0.0, "gateway": 0.0}
            for kind in order:
                wait_archived(vault_path, journal_sent)
                to = "rcpt@bench.test" if kind == "journal" else info.address
                before, own_before = tree_cpu_seconds(server.pid), cpu_seconds_of(server.pid)
                seconds[kind] += smtp_source(port, per_run, args.sessions, args.size, to)
                cpu_seconds[kind] += tree_cpu_seconds(server.pid) - before
                own_seconds[kind] += cpu_seconds_of(server.pid) - own_before
                journal_sent += per_run if kind == "journal" else 0
            sent = per_run * args.slices
            for kind in first:
                cpu[kind].append(cpu_seconds[kind] * 1000 / sent)
                own_cpu[kind].append(own_seconds[kind] * 1000 / sent)
                rates[kind].append(sent / seconds[kind])
                print(f"round {round_number + 1} {kind}: {sent} messages in "
                      f"{seconds[kind]:.2f} s = {rates[kind][-1]:,.0f} msg/s, server CPU "
                      f"{cpu[kind][-1]:.2f} ms/msg (SMTP process {own_cpu[kind][-1]:.2f})",
                      flush=True)
            ratios.append(rates["gateway"][-1] / rates["journal"][-1])
            print(f"round {round_number + 1} ratio {ratios[-1]:.2f} (load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
        stored = mailboxes.get(info.id)
        assert stored.count == per_run * args.slices * args.rounds, stored
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    journal, gateway = (statistics.median(rates[k]) for k in ("journal", "gateway"))
    print(f"median journal {journal:,.0f} msg/s, gateway mailbox {gateway:,.0f} msg/s: "
          f"ratio of the medians {gateway / journal:.2f}, median of the rounds' ratios "
          f"{statistics.median(ratios):.2f}, lowest round {min(ratios):.2f} (target >= 0.8); "
          f"server CPU per message (SMTP process, archiver, gateway writer) journal "
          f"{statistics.median(cpu['journal']):.2f} ms, gateway "
          f"{statistics.median(cpu['gateway']):.2f} ms, of it the SMTP process's journal "
          f"{statistics.median(own_cpu['journal']):.2f} ms, gateway "
          f"{statistics.median(own_cpu['gateway']):.2f} ms; load average "
          f"{load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after", flush=True)


if __name__ == "__main__":
    main()
