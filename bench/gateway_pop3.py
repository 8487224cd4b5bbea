"""The POP3 proxy against a direct connection to the same provider.

The tests' Dovecot (POP3S on 127.0.0.1) gets one account filled by MULTIAPPEND with N
distinct realistic messages (real corpus mail varied by bench/make_corpus.py). The gateway's
POP3 proxy runs in a process of its own (``--serve-proxy``, the same code `serve --pop3-proxy`
runs: STLS towards the client, POP3S and a verified certificate towards Dovecot, a gateway
mailbox keeping each retrieved message). Then, each round:
  - direct: poplib over POP3S to Dovecot: login, RETR every message, QUIT;
  - proxy, first pass: poplib with STLS to the proxy, the same commands: every message is
    also sealed to the mailbox's key and fsynced before the client gets it (a fresh mailbox
    each round);
  - proxy, again: the same mailbox, so every message is already kept (one key check each).
Messages/s = N / wall time of the RETR loop; latency = time of each RETR, from sending the
command to the last byte of the reply.

    .venv/bin/python bench/gateway_pop3.py --count 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import poplib
import random
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import imapclient  # noqa: E402
from make_corpus import CORPUS, seeds, vary  # noqa: E402

from mailvault.gateway.mailboxes import GatewayMailboxes  # noqa: E402
from mailvault.gateway.pop3_connection import server_tls  # noqa: E402
from mailvault.gateway.pop3_proxy_service import (  # noqa: E402
    Pop3ProxyService,
    ProxySettings,
)
from mailvault.gateway.upstream import UpstreamPolicy  # noqa: E402
from tests.gateway.pop3_support import make_certificate  # noqa: E402
from tests.sources import dovecot  # noqa: E402


def fill(server: dovecot.Dovecot, address: str, password: str, count: int) -> int:
    """APPEND ``count`` distinct messages (CRLF) to INBOX; returns their bytes."""
    rng = random.Random(7)
    pool = seeds(CORPUS)
    client = imapclient.IMAPClient("127.0.0.1", server.imap, ssl=False)
    client.login(address, password)
    total = 0
    chunk: list[bytes] = []
    for number in range(count):
        raw = vary(pool[number % len(pool)], number, rng).replace(b"\r\n", b"\n")
        chunk.append(raw.replace(b"\n", b"\r\n"))
        total += len(chunk[-1])
        if len(chunk) == 500 or number == count - 1:
            client.multiappend("INBOX", chunk)
            chunk = []
    client.logout()
    return total


def serve_proxy(args: argparse.Namespace) -> None:
    """The proxy in this process until stdin closes; prints its port."""
    context = server_tls(args.cert, args.key, "gateway")
    assert context is not None
    settings = ProxySettings(GatewayMailboxes(Path(args.gateway)), context,
                             UpstreamPolicy(("127.0.0.1",), args.ca_file), 64 << 20)

    async def main() -> None:
        service = Pop3ProxyService(settings, ["127.0.0.1:0"], [])
        endpoints = await service.start()
        print(endpoints[0].rpartition(":")[2], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await service.stop()

    asyncio.run(main())


def retrieve_all(client: poplib.POP3, user: str, password: str) -> tuple[float, list[float]]:
    """Log in, RETR every message, QUIT; (seconds for the RETR loop, each RETR's seconds)."""
    client.user(user)
    client.pass_(password)
    count = client.stat()[0]
    latencies = []
    started = time.perf_counter()
    for number in range(1, count + 1):
        before = time.perf_counter()
        client.retr(number)
        latencies.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started
    client.quit()
    return elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-proxy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gateway", help=argparse.SUPPRESS)
    parser.add_argument("--cert", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--ca-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_proxy:
        serve_proxy(args)
        return
    # poplib's default line limit is below what real mail holds.
    poplib._MAXLINE = 1 << 20  # type: ignore[attr-defined]

    work = Path(tempfile.mkdtemp(prefix="gwpop-bench-"))
    server = dovecot.start()
    try:
        server.add_user("bench@example.org", "bench-pw")
        size = fill(server, "bench@example.org", "bench-pw", args.count)
        certificate = make_certificate(work / "tls")
        gateway = GatewayMailboxes(work / "gateway")
        proxy = subprocess.Popen(
            [sys.executable, __file__, "--serve-proxy", "--gateway", str(work / "gateway"),
             "--cert", str(certificate.cert), "--key", str(certificate.key),
             "--ca-file", str(server.ca_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proxy.stdout is not None and proxy.stdin is not None
        proxy_port = int(proxy.stdout.readline())
        upstream = ssl.create_default_context(cafile=str(server.ca_file))
        results: dict[str, list[tuple[float, list[float]]]] = {
            "direct": [], "proxy, first pass": [], "proxy, again": []}
        for _ in range(args.rounds):
            results["direct"].append(retrieve_all(poplib.POP3_SSL(
                "127.0.0.1", server.pop3s, context=upstream), "bench@example.org",
                "bench-pw"))
            info, _password = gateway.create(None)
            user = f"bench@example.org%127.0.0.1:{server.pop3s}%{info.id}"
            for label in ("proxy, first pass", "proxy, again"):
                client = poplib.POP3("127.0.0.1", proxy_port)
                client.stls(certificate.client_context())
                results[label].append(retrieve_all(client, user, "bench-pw"))
            assert gateway.get(info.id).count == args.count
        proxy.stdin.close()
        proxy.wait(30)
    finally:
        dovecot.remove(server)
    report = {"messages": args.count, "bytes": size, "rounds": args.rounds}
    direct_median = statistics.median(
        statistics.median(latencies) for _, latencies in results["direct"])
    for label, rounds in results.items():
        walls = [wall for wall, _ in rounds]
        medians = [statistics.median(latencies) for _, latencies in rounds]
        p95s = [statistics.quantiles(latencies, n=20)[18] for _, latencies in rounds]
        report[label] = {
            "msg_per_s": round(args.count / statistics.median(walls)),
            "rounds_s": [round(w, 2) for w in walls],
            "retr_median_ms": round(statistics.median(medians) * 1000, 2),
            "retr_p95_ms": round(statistics.median(p95s) * 1000, 2),
            "added_median_ms": round((statistics.median(medians) - direct_median) * 1000, 2),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
