"""Running an export job: natives, extracted text, attachments, manifests, the load file,
the signed summary, and (if asked) a zip of it all.

Resumable: messages are done in batches of ``BATCH``; after each batch its files are handed
to the kernel and the checkpoint moves forward in the catalog, with one record for the
batch (its files, errors, counts, and where the mbox and manifest files end). A run that
starts on a job with a checkpoint first cuts the mbox files and the manifests back to it,
then writes again from there: everything after the checkpoint is written again with the
same bytes (every path, number and byte depends only on the job's fixed message list), so a
killed export run again ends with the same files as one that was never interrupted. Files
are not fsynced one by one: the disk is synced once, before the summary (the commit point:
an export without it is unfinished) is written.

Parallel: each message is built and written in a worker process (``write_chunk``: MIME
parsing, text extraction, its native, attachment and text files, its manifest rows),
started as the import pipeline starts its own (forkserver, bound to this process's life by
``lifeline``; ``[ingest] workers``, 0 = one a core; an export of one batch or less is done in
this process, where starting workers would cost more than it saves). This process reads
each batch's bytes and hands them to the workers up to ``AHEAD`` batches ahead; while they
build those, it appends the oldest one's manifest rows (and mbox entries) in message-id
order and checkpoints it: every path and byte is what one process would write.

Bounded memory: at most ``AHEAD`` batches of messages at a time, and no more than
``AHEAD_BYTES`` of message bytes unless one batch alone holds more; only the list of errors
is held whole.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import multiprocessing
import os
import zipfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from mailvault import lifeline
from mailvault.discovery import documents, jobs, loadfile, manifest, mbox, signing
from mailvault.discovery.jobs import ExportJob
from mailvault.discovery.manifest import LOAD_FILE
from mailvault.errors import BusyError, InputError, StorageFullError, StoreError
from mailvault.message import Extractor
from mailvault.search.extract import Limits, extractor
from mailvault.store import catalog, claims, file_modes
from mailvault.store.catalog import MessageRow
from mailvault.vault import Vault

BATCH = 200
# Batches read and handed to the workers ahead of the one being appended, and the most
# message bytes they may hold together (one batch is always allowed, however large).
AHEAD = 4
AHEAD_BYTES = 64 << 20
# Messages a worker builds per task: small enough to spread a batch over the workers.
_CHUNK = 25
SUMMARY = "summary.json"
SIGNATURE = "signature.json"
KEY_FILE = "export-key.pem"
# Written last, not listed in the summary (the summary cannot list its own hash).
UNLISTED = (SUMMARY, SIGNATURE)
_COPY_CHUNK = 1 << 20

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Finished:
    """A finished export: the job, its summary's hash, what it holds, the key that signed it."""

    job: ExportJob
    summary_sha256: str
    counts: dict[str, int]
    fingerprint: str
    zip_path: str | None

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job.to_json(), "summary_sha256": self.summary_sha256,
                "counts": self.counts, "key_fingerprint": self.fingerprint,
                "zip": self.zip_path}


def run(vault: Vault, job: ExportJob, *, case_name: str | None, custodians: list[str],
        progress: Progress | None = None) -> Finished:
    """Run (or resume) a job to the end."""
    if job.state != "running":
        raise InputError(f"export job {job.id} is finished already.")
    root = Path(job.dest)
    try:
        file_modes.make_folder(root)
    except OSError as exc:
        raise InputError(f"{root} cannot be written: {exc.strerror}.") from exc
    with _running(vault, job):
        try:
            return _run(vault, job, root, case_name, custodians, progress)
        except OSError as exc:
            # Every batch before the failed write is checkpointed; the run resumes there.
            raise _write_error(exc, root, jobs.get(vault, job.id)) from exc


def _write_error(exc: OSError, root: Path, job: ExportJob) -> StoreError:
    """A failed write below the export folder as one sentence that says how to resume."""
    resume = "run the same command again to resume"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"the disk is full: {job.done} of {job.total} messages were "
                                f"exported to {root} before it filled; {resume} when there "
                                "is space.")
    return StoreError(f"{root} cannot be written ({exc.strerror or exc}): {job.done} of "
                      f"{job.total} messages were exported; {resume}.")


@contextmanager
def _running(vault: Vault, job: ExportJob) -> Iterator[None]:
    """Hold the job's lock (``VAULT/locks/export-ID.lock``, flock: a killed run lets go of
    it) and its job claim (``export:ID``: a serve node sharing the catalog, or one whose lease
    has not run out) for the run: two runs of one job would write the same files at once."""
    folder = vault.path / "locks"
    file_modes.make_folder(folder)
    fd = file_modes.open_new(folder / f"export-{job.id}.lock", os.O_WRONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"export job {job.id} is running in another process.") from None
        with claims.hold_or_busy(vault.engine, vault.settings.serve, f"export:{job.id}",
                                 f"export job {job.id}"):
            yield
    finally:
        os.close(fd)


def _run(vault: Vault, job: ExportJob, root: Path, case_name: str | None,
         custodians: list[str], progress: Progress | None) -> Finished:
    job = jobs.get(vault, job.id)
    if job.state != "running":
        raise InputError(f"export job {job.id} is finished already.")
    parts = _resumed_parts(vault, job, root)
    mboxes = mbox.MboxFiles(root)
    try:
        with _workers(vault, job.total - job.done) as pool:
            position = job.done
            after: int | None = job.last_message
            started: deque[_Started] = deque()
            while True:
                # Batches are read and handed to the workers ahead of the one being appended
                # (up to AHEAD of them, AHEAD_BYTES of messages), so that they always have
                # work while this process appends, checkpoints, or is kept off a core.
                while after is not None and (not started or (
                        len(started) < AHEAD
                        and sum(b.size for b in started) < AHEAD_BYTES)):
                    ids = jobs.next_ids(vault, job, after, BATCH)
                    if not ids:
                        after = None
                        break
                    started.append(_start(vault, job, root, ids, position, custodians, pool))
                    after, position = ids[-1], position + len(ids)
                if not started:
                    break
                current = started.popleft()
                record = current.finish(mboxes, parts)
                mboxes.flush()
                record["manifest"] = parts.ends()
                job = jobs.checkpoint(vault, job, current.items[-1].message_id,
                                      len(current.items), record, len(record["errors"]))
                if progress is not None:
                    progress(job.done, job.total)
        return _finish(vault, job, root, case_name, parts)
    finally:
        mboxes.close()
        parts.close()


def _resumed_parts(vault: Vault, job: ExportJob, root: Path) -> manifest.Parts:
    """The manifest files and mbox files cut back to the job's checkpoint (or begun)."""
    mbox_ends: dict[str, int] = {}
    manifest_ends: dict[str, int] | None = None
    for _id, record in jobs.records(vault, job, up_to=job.last_message):
        if "manifest" not in record:
            # One record a message, without the manifests' ends: written by the development
            # versions before batch checkpoints (never released), whose files this version
            # cannot go on from.
            raise InputError(f"export job {job.id} was begun by an earlier version of "
                             "mailvault and cannot be resumed by this one: export again "
                             "to a new folder.")
        for path, end in record["mbox"].items():
            mbox_ends[path] = max(end, mbox_ends.get(path, 0))
        manifest_ends = record["manifest"]
    if job.format == "mbox":
        mbox.cut_back(root, mbox_ends)
    return manifest.Parts(root, manifest_ends)


class _InProcess(Executor):
    """Builds documents here, at once: for exports too small to be worth starting workers."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # the caller's result() raises it, as a worker's would
            future.set_exception(exc)
        return future


@contextmanager
def _workers(vault: Vault, remaining: int) -> Iterator[Executor]:
    """What builds documents: as many processes as ``[ingest] workers`` says, or this
    process when ``remaining`` is one batch or less."""
    if remaining <= BATCH:
        yield _InProcess()
        return
    count = vault.settings.ingest.workers or multiprocessing.cpu_count()
    pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=lifeline.bind_to, initargs=(os.getpid(),))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _Task:
    """One message for a worker: its position, bytes, catalog facts, native path, and the
    envelope sender of its mbox entry."""

    position: int
    raw: bytes
    facts: documents.MessageFacts
    native: str
    sender: str


@dataclass(frozen=True)
class Written:
    """What a worker wrote for one message: its files (path, SHA-256, size), its manifest
    rows, its mbox entry (mbox format: this process appends it, in order), and, when the
    entry changes the bytes read back, the message's ids."""

    files: list[tuple[str, str, int]]
    rows: manifest.Rows
    documents: int
    entry: bytes
    changed: dict[str, Any] | None


def write_chunk(root: str, fmt: str, tasks: list[_Task]) -> list[Written]:
    """In a worker: build each message's documents and write its files below ``root``."""
    extract = extractor(Limits())
    writer = _Writer(Path(root))
    return [_write_message(writer, fmt, task, extract) for task in tasks]


def _write_message(writer: _Writer, fmt: str, task: _Task,
                   extract: Extractor) -> Written:
    row = task.facts.row
    built = documents.build(task.position, task.raw, task.facts, task.native, extract)
    files: list[tuple[str, str, int]] = []
    entry, changed = b"", None
    if fmt == "mbox":
        entry, altered = mbox.entry(task.raw, task.sender or row.from_addr, row.date)
        if altered:
            changed = {"control": documents.control_number(task.position), "id": row.id,
                       "sha256": row.sha256}
    else:
        writer.write(task.native, task.raw)
        files.append((task.native, row.sha256, len(task.raw)))
    files.extend((path, *writer.write(path, data)) for path, data in built.files)
    return Written(files, manifest.rows(built.documents), len(built.documents), entry,
                   changed)


@dataclass
class _Item:
    """One message of a batch: the reason it failed, or where its native goes."""

    message_id: int
    position: int
    error: dict[str, Any] | None = None
    native: str = ""


@dataclass
class _Started:
    """A batch read and handed to the workers, appended by ``finish`` in order."""

    job: ExportJob
    items: list[_Item]
    futures: list[Future[list[Written]]] = field(default_factory=list)
    size: int = 0  # bytes of the messages handed out

    def finish(self, mboxes: mbox.MboxFiles, parts: manifest.Parts) -> dict[str, Any]:
        """Append the batch's manifest rows (and mbox entries); the batch's record."""
        written = iter([w for future in self.futures for w in future.result()])
        record: dict[str, Any] = {"files": [], "errors": [], "changed": [], "exported": 0,
                                  "documents": 0, "mbox": {}}
        for item in self.items:
            if item.error is not None:
                record["errors"].append(item.error)
                continue
            done = next(written)
            if self.job.format == "mbox":
                record["mbox"][item.native] = mboxes.append(item.native, done.entry)
            parts.add(done.rows)
            record["files"].extend(done.files)
            record["exported"] += 1
            record["documents"] += done.documents
            if done.changed is not None:
                record["changed"].append(done.changed)
        return record


def _start(vault: Vault, job: ExportJob, root: Path, ids: list[int], done: int,
           custodians: list[str], pool: Executor) -> _Started:
    """Read a batch's messages and give them to the workers to build and write."""
    with vault.engine.connect() as conn:
        rows = {r.id: r for r in catalog.messages_by_id(conn, ids)}
        arrivals = catalog.arrivals_of(conn, ids)
        parties = catalog.addresses_of(conn, ids) if job.layout == "custodian" else {}
    started = _Started(job, [])
    tasks: list[_Task] = []
    for offset, message_id in enumerate(ids):
        item = _Item(message_id, done + offset + 1)
        started.items.append(item)
        control = documents.control_number(item.position)
        row = rows.get(message_id)
        if row is None:
            item.error = _error(control, message_id, "",
                                "the message is no longer in the archive")
            continue
        try:
            raw = vault.read_raw(row)
        except StoreError as exc:
            item.error = _error(control, message_id, row.sha256, str(exc))
            continue
        came = arrivals.get(message_id, [])
        place = _place(row, parties.get(message_id, set()), custodians, job.layout)
        folder = documents.place_path(place)
        item.native = (f"mbox/{folder}.mbox" if job.format == "mbox"
                       else f"natives/{folder}/{control}.eml")
        facts = documents.MessageFacts(
            row=row, envelope_to=sorted({r for a in came for r in a.envelope_to}),
            sources=[a.describe() for a in came], place=place)
        sender = next((a.envelope_from for a in came if a.envelope_from), None)
        tasks.append(_Task(item.position, raw, facts, item.native, sender or ""))
        started.size += len(raw)
    for first in range(0, len(tasks), _CHUNK):
        started.futures.append(pool.submit(write_chunk, str(root), job.format,
                                           tasks[first:first + _CHUNK]))
    return started


def _place(row: MessageRow, parties: set[str], custodians: list[str], layout: str) -> str:
    if layout == "custodian":
        return next((c for c in custodians if c in parties), "_others")
    return row.folder or "_nofolder"


def _error(control: str, message_id: int, sha256: str, reason: str) -> dict[str, Any]:
    return {"control": control, "id": message_id, "sha256": sha256, "reason": reason}


class _Writer:
    """Writes files below the export folder, owner-only, replacing what a killed run left."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders: set[str] = set()

    def write(self, path: str, data: bytes) -> tuple[str, int]:
        folder = path.rpartition("/")[0]
        if folder and folder not in self._folders:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
        fd = file_modes.open_new(self.root / path, os.O_WRONLY | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return hashlib.sha256(data).hexdigest(), len(data)


class _HashingFile:
    """A file written through, its SHA-256 and size kept."""

    def __init__(self, path: Path) -> None:
        self.handle: BinaryIO = os.fdopen(file_modes.open_new(path, os.O_WRONLY | os.O_TRUNC),
                                          "wb")
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)

    def close(self) -> tuple[str, int]:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return self.digest.hexdigest(), self.size


def _finish(vault: Vault, job: ExportJob, root: Path, case_name: str | None,
            parts: manifest.Parts) -> Finished:
    # Everything written so far reaches the disk before the summary vouches for it.
    os.sync()
    counts = {"messages": job.total, "exported": 0, "attachments": 0, "documents": 0,
              "errors": 0, "files": 0, "bytes": 0}
    errors: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for _id, record in jobs.records(vault, job):
        errors.extend(record["errors"])
        changed.extend(record["changed"])
        counts["exported"] += record["exported"]
        counts["documents"] += record["documents"]
    counts["attachments"] = counts["documents"] - counts["exported"]
    fixed = parts.finish()
    counts["errors"] = len(errors)
    pem = signing.public_pem(vault.export_signing_key())
    fingerprint = signing.fingerprint(pem)
    fixed.append((KEY_FILE, *_Writer(root).write(KEY_FILE, pem)))
    fixed.extend(_mbox_files(root) if job.format == "mbox" else [])
    head = {
        "mailvault_export": 1, "job": job.id, "query": job.query, "case": case_name,
        "principal": job.actor, "format": job.format, "layout": job.layout,
        "started_at": job.created_at.isoformat() if job.created_at else None,
        "finished_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "counts": counts, "errors": errors, "mbox_line_break_added": changed,
        "key_fingerprint": fingerprint,
        "load_file": {"name": LOAD_FILE, "encoding": "UTF-8 with BOM",
                      "quote": loadfile.QUOTE, "separator": "0x14",
                      "newline_in_value": loadfile.NEWLINE_CODE},
    }
    summary_sha256 = _write_summary(root, head, lambda: _listed_files(vault, job, fixed),
                                    counts)
    signature = {"summary": SUMMARY, "summary_sha256": summary_sha256, "algorithm": "Ed25519",
                 "statement": "mailvault-export-summary sha256=<summary_sha256>",
                 "key": KEY_FILE, "key_fingerprint": fingerprint,
                 "signature": signing.sign(vault.export_signing_key(), summary_sha256)}
    file_modes.write_replacing(root / SIGNATURE,
                               (json.dumps(signature, indent=2) + "\n").encode())
    zip_path = _zip(root) if job.zip else None
    done = jobs.finish(vault, job, summary_sha256, counts)
    return Finished(done, summary_sha256, counts, fingerprint,
                    str(zip_path) if zip_path else None)


def _listed_files(vault: Vault, job: ExportJob, fixed: list[tuple[str, str, int]]
                  ) -> Iterator[tuple[str, str, int]]:
    for _id, record in jobs.records(vault, job):
        yield from (tuple(f) for f in record["files"])
    yield from fixed


def _write_summary(root: Path, head: dict[str, Any],
                   files: Callable[[], Iterator[tuple[str, str, int]]],
                   counts: dict[str, int]) -> str:
    """summary.json, written as it is made (the file list can be long): the head fields,
    then ``files``: path -> {sha256, size}; returns the file's SHA-256. The list is read
    twice (once to count it into the head), never held."""
    counts["files"] = counts["bytes"] = 0
    for _path, _digest, size in files():
        counts["files"] += 1
        counts["bytes"] += size
    out = _HashingFile(root / (SUMMARY + ".tmp"))
    text = json.dumps(head, ensure_ascii=False, indent=2)
    out.write((text[:-2] + ',\n  "files": {').encode())
    separator = "\n"
    for path, digest, size in files():
        out.write(f'{separator}    {json.dumps(path, ensure_ascii=False)}: '
                  f'{{"sha256": "{digest}", "size": {size}}}'.encode())
        separator = ",\n"
    out.write(b"\n  }\n}\n")
    digest, _size = out.close()
    os.replace(root / (SUMMARY + ".tmp"), root / SUMMARY)
    return digest


def _mbox_files(root: Path) -> list[tuple[str, str, int]]:
    return [(path.relative_to(root).as_posix(), *manifest.file_digest(path))
            for path in sorted((root / "mbox").rglob("*.mbox"))]


def _zip(root: Path) -> Path:
    """The export folder as ``<folder>.zip`` beside it: entries sorted, fixed times and
    modes, so the same export always gives the same zip."""
    target = root.with_name(root.name + ".zip")
    temporary = root.with_name(root.name + ".zip.tmp")
    fd = file_modes.open_new(temporary, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "wb") as handle, zipfile.ZipFile(handle, "w") as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{root.name}/{path.relative_to(root).as_posix()}",
                                   date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            with open(path, "rb") as source, archive.open(info, "w",
                                                           force_zip64=True) as entry:
                while chunk := source.read(_COPY_CHUNK):
                    entry.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    return target
