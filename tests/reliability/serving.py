"""`mailvault serve` as a real process, and SMTP senders that remember every message the
server acknowledged (250) by its SHA-256."""

from __future__ import annotations

import hashlib
import signal
import smtplib
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path

from tests.reliability.processes import WAIT_S, kill_group, start


@dataclass
class Server:
    """A running `serve`; ``port`` is its SMTP port."""

    process: subprocess.Popen[bytes]
    port: int

    @classmethod
    def start(cls, vault: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
        process = start("serve", "--vault", vault, "--smtp", "127.0.0.1:0", *extra, env=env,
                        stdout=subprocess.PIPE)
        assert process.stdout is not None
        while True:
            line = process.stdout.readline().decode()
            if not line:
                kill_group(process)
                raise AssertionError("serve ended before it listened")
            if line.startswith("listening: smtp "):
                return cls(process, int(line.rsplit(":", 1)[1]))

    def stop(self) -> None:
        """A clean stop (SIGTERM): it archives what is spooled first; exit status 0."""
        self.process.send_signal(signal.SIGTERM)
        try:
            assert self.process.wait(WAIT_S) == 0
        finally:
            kill_group(self.process)
            self._close()

    def kill(self) -> None:
        kill_group(self.process)
        self._close()

    def _close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()


def smtp_message(tag: str, number: int, body_lines: int = 40) -> bytes:
    """A distinct small message (about 2.5 KB with the default body)."""
    return (f"From: load{number % 7}@example.org\r\nTo: archive@example.org\r\n"
            f"Subject: {tag} {number}\r\nMessage-ID: {make_msgid(domain='example.org')}\r\n"
            f"Date: Thu, 04 Mar 2021 10:30:00 +0000\r\n\r\n"
            + f"{tag} payload line {number}\r\n" * body_lines).encode()


@dataclass
class Senders:
    """Threads sending distinct messages over SMTP to whichever port ``port()`` gives,
    each at most ``rate`` messages a second (0: as fast as it can). A message that was not
    acknowledged is sent again, the same bytes, until it is."""

    port: Callable[[], int]
    tag: str
    threads: int = 2
    rate: float = 0.0
    acknowledged: set[str] = field(default_factory=set)
    refused: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Senders:
        for n in range(self.threads):
            thread = threading.Thread(target=self._send, args=(n,), daemon=True)
            thread.start()
            self._running.append(thread)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(WAIT_S)
        self._running.clear()

    def _send(self, worker: int) -> None:
        number = 0
        interval = self.threads / self.rate if self.rate else 0.0
        client: smtplib.SMTP | None = None
        raw = smtp_message(f"{self.tag}-{worker}", number)
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", self.port(), timeout=30)
                client.sendmail("load@example.org", ["archive@example.org"], raw)
            except (OSError, smtplib.SMTPException):
                with self._lock:
                    self.refused += 1
                if client is not None:
                    self._quietly_close(client)
                client = None
                self._stop.wait(0.05)
                continue
            with self._lock:
                self.acknowledged.add(hashlib.sha256(raw).hexdigest())
            number += 1
            raw = smtp_message(f"{self.tag}-{worker}", number)
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if client is not None:
            self._quietly_close(client)

    @staticmethod
    def _quietly_close(client: smtplib.SMTP) -> None:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
