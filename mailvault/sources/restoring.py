"""Restoring archived mail into a mailbox over IMAP: each message's exact bytes APPENDed
with the INTERNALDATE and flags its arrival recorded, folder by folder.

**Never twice.** Before a folder gets anything, what it already holds is listed (Message-ID
and RFC822.SIZE of each message, not the bodies); a message with the same Message-ID and
size there is left alone. A message without a Message-ID is compared by its bytes with the
folder's messages of its size that have none either. The target mailbox is thus the job's
state: a restore stopped anywhere (a dropped connection, a kill) is resumed by running the
same command again, and a message APPENDed just before the stop is found there.

**Where each message goes.** Each folder an arrival names (an IMAP folder, an imported
folder) gets one copy, with that arrival's flags and INTERNALDATE; a message that arrived
in no folder (SMTP journal, milter) goes to its catalog folder, else INBOX. An arrival
without an INTERNALDATE (files, captures) gets the message's Date; without either, the
server's time. ``\\Recent`` is left out (only a server sets it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mailvault.errors import InputError, MailvaultError, SourceError
from mailvault.records import Provenance
from mailvault.sources.imap import Credentials, Endpoint
from mailvault.sources.imap_append import AppendSession, wire_form
from mailvault.store import catalog
from mailvault.store.catalog import MessageRow

if TYPE_CHECKING:
    from mailvault.vault import Vault

INBOX = "INBOX"
FOLDER_MODES = ("keep", "flat", "into")
# No "none": the mailbox password would cross the network in clear.
TLS_MODES = ("implicit", "starttls")
_PORTS = {"implicit": 993, "starttls": 143}
# A host name or IPv4 address as a connection takes it (an IPv6 address goes in brackets).
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$")
_BATCH = 500
# Messages and bytes sent in one MULTIAPPEND.
APPEND_BATCH = 100
APPEND_BATCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """The mailbox to restore into (its password is passed apart, never kept here)."""

    host: str
    port: int
    tls: str
    user: str
    ca_file: str | None = None

    @classmethod
    def parse(cls, where: str, tls: str, user: str, ca_file: str | None = None) -> Target:
        """``HOST`` or ``HOST:PORT`` (``[v6]:PORT``); the port defaults by ``tls``."""
        tls = tls.strip().lower()
        if tls not in TLS_MODES:
            raise InputError(f"--tls is implicit or starttls, not {tls!r} (a restore never "
                             "sends a password in clear).")
        if not user.strip() or not user.isprintable():
            raise InputError("a restore needs the mailbox user (--user), printable text.")
        if ca_file and (not ca_file.isprintable()):
            raise InputError("the CA file's name has control characters.")
        host, port = where.strip(), _PORTS[tls]
        if host.startswith("["):
            inner, _sep, rest = host[1:].partition("]")
            host, port_text = inner, rest.removeprefix(":")
        elif host.count(":") == 1:
            host, port_text = host.split(":")
        else:
            port_text = ""
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise InputError(f"{where!r} is not HOST or HOST:PORT.")
            port = int(port_text)
        if not _valid_host(host):
            raise InputError("a restore needs the IMAP server as HOST or HOST:PORT (--imap), "
                             f"not {where!r}.")
        return cls(host, port, tls, user.strip(), ca_file or None)

    def endpoint(self, timeout_s: float) -> Endpoint:
        """How to connect: certificates always verified (with ``ca_file`` trusted too)."""
        return Endpoint(self.host, self.port, self.tls, self.ca_file, False, timeout_s)

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True)
class FolderMode:
    """Where restored messages go: ``keep`` each archived folder as it was, ``flat`` all
    into INBOX, ``into`` the archived folders recreated under the folder ``parent``."""

    mode: str = "keep"
    parent: str = ""

    @classmethod
    def parse(cls, text: str) -> FolderMode:
        """``keep``, ``flat``, or ``into NAME`` (also written ``into:NAME``)."""
        mode, _sep, parent = text.strip().replace(":", " ", 1).partition(" ")
        mode, parent = mode.lower(), parent.strip()
        if mode not in FOLDER_MODES:
            raise InputError(f"the folder mode is keep, flat or 'into NAME', not {text!r}.")
        if (mode == "into") != bool(parent):
            raise InputError("'into' needs a folder name ('into Restored'), and only 'into' "
                             "takes one.")
        return cls(mode, parent)

    def target(self, archived: str, delimiter: str) -> str:
        """The target folder for a message archived in ``archived`` ('/'-separated)."""
        if self.mode == "flat":
            return INBOX
        parts = [p for p in archived.split("/") if p] or [INBOX]
        if self.mode == "into":
            parts = [p for p in self.parent.split("/") if p] + parts
        return delimiter.join(parts)

    def describe(self) -> str:
        return f"into {self.parent}" if self.mode == "into" else self.mode


def _valid_host(host: str) -> bool:
    if _HOST.match(host):
        return True
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


@dataclass(frozen=True)
class Copy:
    """One message to put in one folder."""

    message_id: int
    flags: tuple[str, ...]
    internal_date: datetime | None
    size: int


@dataclass
class FolderResult:
    """What happened in one target folder."""

    appended: int = 0
    present: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, int]:
        return {"appended": self.appended, "present": self.present, "failed": self.failed}


@dataclass
class RestoreReport:
    """A restore's outcome, by target folder; ``stopped`` says why it ended early (run it
    again to resume)."""

    target: str
    folders: dict[str, FolderResult] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    appended_sha256: list[str] = field(default_factory=list)
    stopped: str = ""
    # The catalog job (``restore_jobs.py``), and, when this run took up an unfinished one,
    # how far the runs before it had got.
    job: int = 0
    resumed: dict[str, Any] | None = None

    def totals(self) -> dict[str, int]:
        return {name: sum(getattr(r, name) for r in self.folders.values())
                for name in ("appended", "present", "failed")}

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, **self.totals(),
                "folders": {name: r.to_json() for name, r in sorted(self.folders.items())},
                "failures": self.failures, "stopped": self.stopped or None,
                "job": self.job or None, "resumed": self.resumed}


class Progress(Protocol):
    """What is told of a restore's progress (a face's bar)."""

    def start(self, copies: int, size: int) -> None:
        """Planned: how many copies, how many bytes (archived sizes)."""

    def advance(self, copies: int, size: int) -> None:
        """Copies handled so far (appended, already there or failed), and their bytes."""


def plan(vault: Vault, ids: list[int], mode: FolderMode,
         delimiter: str) -> dict[str, list[Copy]]:
    """Target folder -> the copies it should hold, in message id order."""
    folders: dict[str, list[Copy]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _BATCH):
        chunk = ordered[start:start + _BATCH]
        with vault.engine.connect() as conn:
            rows = catalog.messages_by_id(conn, chunk)
            arrivals = catalog.arrivals_of(conn, [r.id for r in rows])
        for row in rows:
            for archived, copy in _copies(row, arrivals[row.id]):
                folders.setdefault(mode.target(archived, delimiter), []).append(copy)
    return folders


def _copies(row: MessageRow, arrivals: list[Provenance]) -> Iterator[tuple[str, Copy]]:
    """One copy per archived folder, with the first arrival's flags and date there."""
    seen: set[str] = set()
    for arrival in arrivals:
        if arrival.folder and arrival.folder not in seen:
            seen.add(arrival.folder)
            yield arrival.folder, Copy(row.id, arrival.flags, arrival.internal_date or row.date,
                                       row.size)
    if not seen:
        yield row.folder or INBOX, Copy(row.id, (), row.date, row.size)


def restore(vault: Vault, ids: list[int], target: Target, password: str, mode: FolderMode,
            progress: Progress | None = None) -> RestoreReport:
    """APPEND these messages into the mailbox, folder by folder, skipping what each folder
    already holds. A connection that fails midway ends the run with ``stopped`` set; what
    was appended stays appended, and running it again resumes. A refused login or an
    unverified certificate raises SourceError before anything is read."""
    report = RestoreReport(target.describe())
    endpoint = target.endpoint(vault.settings.sync.timeout_s)
    with AppendSession(endpoint, Credentials(target.user, password)) as session:
        folders = plan(vault, ids, mode, session.delimiter())
        tally = _Tally(progress)
        if progress is not None:
            progress.start(sum(len(c) for c in folders.values()),
                           sum(c.size for copies in folders.values() for c in copies))
        for folder, copies in sorted(folders.items()):
            result = report.folders.setdefault(folder, FolderResult())
            try:
                _restore_folder(vault, session, folder, copies, result, report, tally)
            except SourceError as exc:
                if exc.retryable:
                    report.stopped = str(exc)
                    break
                # The folder itself was refused (CREATE, EXAMINE): its messages fail, the
                # other folders go on.
                handled = result.appended + result.present + result.failed
                result.failed += len(copies) - handled
                report.failures.append({"id": None, "sha256": None, "folder": folder,
                                        "reason": str(exc)})
    return report


@dataclass
class _Tally:
    """Copies and bytes handled so far, passed on to the progress (if any)."""

    progress: Progress | None
    copies: int = 0
    size: int = 0

    def add(self, copy: Copy) -> None:
        self.copies += 1
        self.size += copy.size
        if self.progress is not None:
            self.progress.advance(self.copies, self.size)


def _restore_folder(vault: Vault, session: AppendSession, folder: str, copies: list[Copy],
                    result: FolderResult, report: RestoreReport, tally: _Tally) -> None:
    session.ensure_folder(folder)
    held = session.holdings(folder)
    pending = AppendBatch(session, folder, result, report)
    for start in range(0, len(copies), _BATCH):
        batch = copies[start:start + _BATCH]
        with vault.engine.connect() as conn:
            rows = {r.id: r for r in catalog.messages_by_id(conn, [c.message_id for c in batch])}
        for copy in batch:
            tally.add(copy)
            row = rows.get(copy.message_id)
            if row is None:
                continue
            try:
                wire = wire_form(vault.read_raw(row))
            except MailvaultError as exc:
                _failed(report, result, row, folder, str(exc))
                continue
            if session.holds(folder, held, wire):
                result.present += 1
                continue
            held.add(wire)
            pending.add(row, copy, wire)
    pending.flush()


@dataclass
class AppendBatch:
    """Messages waiting to go to one folder in one MULTIAPPEND (RFC 3502: all or none, one
    round trip and, on Dovecot, one fsync for the lot), flushed by count or bytes. A batch
    the server refuses is appended again one message at a time, so that only the messages
    it refuses fail."""

    session: AppendSession
    folder: str
    result: FolderResult
    report: RestoreReport
    items: list[tuple[MessageRow, Copy, bytes]] = field(default_factory=list)
    size: int = 0

    def add(self, row: MessageRow, copy: Copy, wire: bytes) -> None:
        self.items.append((row, copy, wire))
        self.size += len(wire)
        if len(self.items) >= APPEND_BATCH or self.size >= APPEND_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        items, self.items, self.size = self.items, [], 0
        if len(items) > 1 and self.session.multiappend:
            try:
                self.session.append_many(self.folder, [(w, c.flags, c.internal_date)
                                                       for _r, c, w in items])
            except SourceError as exc:
                if exc.retryable:
                    raise
            else:
                for row, _copy, _wire in items:
                    self._appended(row)
                return
        for row, copy, wire in items:
            try:
                self.session.append(self.folder, wire, copy.flags, copy.internal_date)
            except SourceError as exc:
                if exc.retryable:
                    raise
                _failed(self.report, self.result, row, self.folder, str(exc))
                continue
            self._appended(row)

    def _appended(self, row: MessageRow) -> None:
        self.result.appended += 1
        self.report.appended_sha256.append(row.sha256)


def _failed(report: RestoreReport, result: FolderResult, row: MessageRow, folder: str,
            reason: str) -> None:
    result.failed += 1
    report.failures.append({"id": row.id, "sha256": row.sha256, "folder": folder,
                            "reason": reason})
