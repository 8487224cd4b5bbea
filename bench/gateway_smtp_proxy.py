"""The SMTP proxy against direct submission to the same provider.

    .venv/bin/python bench/gateway_smtp_proxy.py [--messages 400] [--sessions 8]
                                                 [--size 5000] [--rounds 3]

The provider is the tests' Postfix submission service with Dovecot SASL on loopback
(STARTTLS, AUTH PLAIN, queue with fsync, then discard). Each session is an smtplib client in
a thread: connect, STARTTLS, AUTH, then messages of ``--size`` bytes one after another, QUIT.
The same load goes straight to Postfix and through the proxy (which logs in to Postfix for
each session, seals a copy into one gateway mailbox and fsyncs it before relaying DATA),
alternating for ``--rounds`` rounds. smtp-source cannot be the client here: it speaks neither
STARTTLS nor AUTH. Reports messages/s and the median and 95th-percentile time of one message
(MAIL to the reply to DATA) and of a session's set-up (connect to 235), medians over rounds.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mailvault.config import Settings
from mailvault.gateway.mailboxes import GatewayMailboxes
from tests.gateway.smtp_providers import (
    Provider,
    running_proxy,
    start_provider,
    stop_provider,
)

USER = "bench@example.org"
PASSWORD = "bench-provider-secret"


def message(size: int, number: int) -> bytes:
    head = (f"From: {USER}\r\nTo: rcpt@elsewhere.example\r\nSubject: proxy bench {number}\r\n"
            f"Message-ID: <{number}.{time.time_ns()}@bench.test>\r\n\r\n").encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = (line * (size // len(line) + 1))[:max(size - len(head), 0)]
    return head + body.rstrip(b"\r\n") + b"\r\n"


def run(port: int, login: str, context: ssl.SSLContext, sessions: int, messages: int,
        size: int) -> dict[str, float]:
    """Send ``messages`` over ``sessions`` concurrent sessions; the timings."""
    import smtplib

    per_session = messages // sessions
    sends: list[float] = []
    setups: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def session(index: int) -> None:
        try:
            began = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                client.starttls(context=context)
                client.login(login, PASSWORD)
                ready = time.perf_counter()
                mine = []
                for n in range(per_session):
                    raw = message(size, index * per_session + n)
                    start = time.perf_counter()
                    client.sendmail(USER, ["rcpt@elsewhere.example"], raw)
                    mine.append(time.perf_counter() - start)
            with lock:
                setups.append(ready - began)
                sends.extend(mine)
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    sends.sort()
    return {"msg_s": len(sends) / elapsed, "p50_ms": statistics.median(sends) * 1000,
            "p95_ms": sends[int(len(sends) * 0.95)] * 1000,
            "setup_ms": statistics.median(setups) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    provider: Provider = start_provider()
    try:
        provider.dovecot.add_user(USER, PASSWORD)
        folder = Path(tempfile.mkdtemp(prefix="mailvault-proxy-bench-"))
        mailboxes = GatewayMailboxes(folder / "gateway", "gw.bench.test")
        info, _ = mailboxes.create("bench")
        settings = Settings()
        settings.gateway.tls_cert = str(provider.dovecot.dir / "cert.pem")
        settings.gateway.tls_key = str(provider.dovecot.dir / "key.pem")
        settings.gateway.ca_file = str(provider.ca_file)
        settings.gateway.upstream_allow = ["127.0.0.1"]
        context = ssl.create_default_context(cafile=str(provider.ca_file))
        results: dict[str, list[dict[str, float]]] = {"direct": [], "proxy": []}
        with running_proxy(settings, mailboxes) as proxy:
            proxy_login = f"{USER}%127.0.0.1:{provider.port}%{info.id}"
            for _ in range(args.rounds):
                results["direct"].append(run(provider.port, USER, context, args.sessions,
                                             args.messages, args.size))
                results["proxy"].append(run(proxy.port, proxy_login, context, args.sessions,
                                            args.messages, args.size))
        kept = mailboxes.get(info.id).count
        print(f"{args.sessions} sessions, {args.messages} messages of {args.size} bytes per "
              f"run, {args.rounds} rounds; mailbox copies kept: {kept}")
        medians = {}
        for name, runs in results.items():
            medians[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            m = medians[name]
            print(f"{name:>6}: {m['msg_s']:7.1f} msg/s  per message p50 {m['p50_ms']:6.1f} ms "
                  f"p95 {m['p95_ms']:6.1f} ms  session set-up p50 {m['setup_ms']:6.1f} ms")
        d, p = medians["direct"], medians["proxy"]
        print(f" ratio: {p['msg_s'] / d['msg_s']:.2f} of direct msg/s; added per message "
              f"p50 {p['p50_ms'] - d['p50_ms']:+.1f} ms, "
              f"set-up {p['setup_ms'] - d['setup_ms']:+.1f} ms")
    finally:
        stop_provider(provider)


if __name__ == "__main__":
    main()
