"""The archiver: a process of its own that drains the spool into the vault.

The SMTP and milter sessions run on one event loop; archiving (hashing, catalog transactions,
index writing) costs about as much CPU again per message. In one process both would share one
GIL and the sessions would wait for it, so the drain runs in a child process with its own
Vault and Pipeline (it alone holds the index writer). It reads the segment files itself; the
serving process tells it which spans are fsynced and hears back what is committed, archived or
failed, over a pipe. If the child dies, it is started again from the last committed record.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from mailvault import lifeline
from mailvault.capture.drain import Drain
from mailvault.capture.spool import Position, Span, Spool, SpooledMessage, read_spans
from mailvault.capture.status import CaptureStatus
from mailvault.compliance import object_lock
from mailvault.errors import MailvaultError
from mailvault.ingest.pipeline import Pipeline
from mailvault.vault import Vault

RESTART_AFTER_S = 2.0
# How often the archiver looks for volumes to upload, at most (a pass reads the catalog's
# volume list).
UPLOAD_CHECK_S = 60.0
_EXIT_GRACE_S = 30.0


class Archiver:
    """The serving side: starts the archiver process and answers its questions."""

    def __init__(self, vault_path: Path, spool: Spool, status: CaptureStatus,
                 actor: str) -> None:
        self.vault_path = vault_path
        self.spool = spool
        self.status = status
        self.actor = actor
        self.committed = Position(0, 0)
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._answering: threading.Thread | None = None
        self._stop_by: float | None = None
        self._started_at = 0.0

    def start(self) -> None:
        """Start the archiver process from the last committed record."""
        ours, theirs = self._context.Pipe()
        self._process = self._context.Process(
            target=run_archiver, name="mailvault-archiver",
            args=(str(self.vault_path), str(self.spool.folder), theirs,
                  (self.committed.segment, self.committed.offset), self.actor, os.getpid()))
        self._process.start()
        theirs.close()
        self._started_at = time.monotonic()
        self._answering = threading.Thread(target=self._answer, args=(ours,),
                                           name="archiver-pipe", daemon=True)
        self._answering.start()

    def check(self) -> None:
        """Start the archiver again if it died (called about once a second)."""
        process = self._process
        if process is None or process.is_alive() or self._stop_by is not None:
            return
        if time.monotonic() - self._started_at < RESTART_AFTER_S:
            return
        self.status.error(f"the archiver process stopped (exit code {process.exitcode}); "
                          "starting it again.")
        self.start()

    def stop(self, finish_within: float) -> None:
        """Let the archiver archive what is spooled (up to ``finish_within`` s), then end it."""
        self._stop_by = time.monotonic() + finish_within
        if self._process is not None:
            self._process.join(finish_within + _EXIT_GRACE_S)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()
        if self._answering is not None:
            self._answering.join()

    def _answer(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return
                kind = message[0]
                if kind == "read":
                    conn.send(self._spans(Position(message[1], message[2]), message[3]))
                elif kind == "committed":
                    self.committed = Position(message[1], message[2])
                    try:
                        self.spool.committed(self.committed)
                    except MailvaultError as exc:
                        self.status.error(str(exc))
                elif kind == "drained":
                    self.status.drained(message[1], message[2])
                elif kind == "error":
                    self.status.error(message[1])
                elif kind == "index":
                    self.status.index(message[1])

    def _spans(self, after: Position, timeout: float) -> list[tuple[int, int, int]] | None:
        if self._stop_by is None:
            spans = self.spool.readable(after, timeout)
        else:
            spans = self.spool.readable(after, 0)
            if not spans or time.monotonic() > self._stop_by:
                return None
        return [(s.segment, s.start, s.stop) for s in spans]


class RemoteSpool:
    """The archiver's side of the pipe: the spool as ``Drain`` wants to see it."""

    def __init__(self, folder: Path, conn: Connection) -> None:
        self.folder = folder
        self.conn = conn

    def read(self, after: Position, max_items: int, timeout: float) -> list[SpooledMessage] | None:
        try:
            self.conn.send(("read", after.segment, after.offset, timeout))
            spans = self.conn.recv()
        except (EOFError, OSError):
            return None  # the serving process is gone: stop
        if spans is None:
            return None
        return read_spans(self.folder, [Span(*s) for s in spans], max_items)

    def committed(self, position: Position) -> None:
        self._tell(("committed", position.segment, position.offset))

    def drained(self, status: str, count: int) -> None:
        self._tell(("drained", status, count))

    def error(self, text: str) -> None:
        self._tell(("error", text))

    def index(self, problem: str) -> None:
        self._tell(("index", problem))

    def _tell(self, message: tuple[object, ...]) -> None:
        # If the serving process is gone, the next read says stop.
        with contextlib.suppress(OSError):
            self.conn.send(message)


class BucketUploads:
    """The archiver's uploads, for a vault whose blobs go to a bucket: every volume this node
    wrote goes up once it is full or has taken mail for ``[store] s3_upload_after_s``, while
    serve runs (each node uploads its own: the volumes are on its disk). Without it a quiet
    node's last volume, and every volume of a node that runs no lifecycle pass, would stay
    on local disk until serve stops."""

    def __init__(self, vault: Vault, source: RemoteSpool) -> None:
        self.vault = vault
        self.source = source
        self._after_s = float(vault.settings.store.s3_upload_after_s)
        self._every_s = min(UPLOAD_CHECK_S, max(self._after_s / 2, 0.1))
        self._next = 0.0

    def __call__(self) -> None:
        moment = time.monotonic()
        if moment < self._next:
            return
        self._next = moment + self._every_s
        try:
            object_lock.upload_aged(self.vault, self._after_s)
        except MailvaultError as exc:
            # The volumes stay durable on this disk; the next pass tries again.
            self.source.error(f"uploading to the bucket failed (will retry): {exc}")
        except OSError as exc:
            # Another node or command uploaded and removed the file while this one read it.
            self.source.error(f"uploading to the bucket failed (will retry): {exc.strerror}.")


def run_archiver(vault_path: str, spool_folder: str, conn: Connection,
                 start: tuple[int, int], actor: str, server: int) -> None:
    """The archiver process: open the vault and drain until told to stop."""
    # Ctrl-C reaches the whole process group; the serving process decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A killed server must not leave the archiver busy with a batch (the pipe tells it only
    # at its next read): it ends at once, and its workers with it.
    lifeline.bind_to(server)
    source = RemoteSpool(Path(spool_folder), conn)
    try:
        with Vault.open(Path(vault_path)) as vault, Pipeline(vault, actor=actor) as pipeline:
            Drain(source, pipeline, Position(*start), BucketUploads(vault, source)).run()
    except MailvaultError as exc:
        source.error(f"the archiver cannot open the vault: {exc}")
        raise SystemExit(1) from exc
    finally:
        conn.close()
