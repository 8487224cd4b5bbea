"""Running an export job: natives, extracted text, attachments, manifests, the load file,
the signed summary, and (if asked) a zip of it all.

Resumable: messages are written in batches; after each batch the files are handed to the
kernel and the checkpoint moves forward in the catalog. A run that starts on a job with a
checkpoint first cuts every mbox file back to the checkpoint, then writes again from there:
everything after the checkpoint is written again with the same bytes (every path, number
and byte depends only on the job's fixed message list), so a killed export run again ends
with the same files as one that was never interrupted. The manifests, load file and summary
are written only once every message is done, from what the catalog recorded.

Parallel: the MIME parsing and text extraction of each message (``documents.build``, most
of an export's work) run in worker processes, started as the import pipeline starts its own
(forkserver, bound to this process's life by ``lifeline``; ``[ingest] workers``, 0 = one a
core; an export of one batch or less is built in this process, where starting workers would
cost more than it saves). This process reads each batch's bytes, hands them to the workers,
and, while they build the next batch, writes the files of the current one in message-id
order: every path and byte is what one process would write.

Bounded memory: two batches of messages at a time (the one being written, the one being
built); manifests are written row by row from the catalog; only the list of errors is held
whole.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import multiprocessing
import os
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from mailvault import lifeline
from mailvault.discovery import documents, jobs, loadfile, mbox, signing
from mailvault.discovery.jobs import ExportJob
from mailvault.errors import InputError, StorageFullError, StoreError
from mailvault.search.extract import Limits, extractor
from mailvault.store import catalog, file_modes
from mailvault.store.catalog import MessageRow
from mailvault.vault import Vault

BATCH = 200
# Messages a worker builds per task: small enough to spread a batch over the workers.
_CHUNK = 25
SUMMARY = "summary.json"
SIGNATURE = "signature.json"
KEY_FILE = "export-key.pem"
MANIFEST_CSV = "manifest.csv"
MANIFEST_JSON = "manifest.json"
LOAD_FILE = "loadfile.dat"
# Written last, not listed in the summary (the summary cannot list its own hash).
UNLISTED = (SUMMARY, SIGNATURE)
MANIFEST_COLUMNS = ("control", "type", "id", "sha256", "size", "date", "from", "to", "cc",
                    "envelope_to", "subject", "folder", "source", "custodian", "filename",
                    "content_type", "attachments", "parent", "children", "path", "text_path")
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
    it) for the run: two runs of one job would write the same files at once."""
    folder = vault.path / "locks"
    file_modes.make_folder(folder)
    fd = file_modes.open_new(folder / f"export-{job.id}.lock", os.O_WRONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"export job {job.id} is running in another process.") from None
        yield
    finally:
        os.close(fd)


def _run(vault: Vault, job: ExportJob, root: Path, case_name: str | None,
         custodians: list[str], progress: Progress | None) -> Finished:
    job = jobs.get(vault, job.id)
    if job.state != "running":
        raise InputError(f"export job {job.id} is finished already.")
    writer = _Writer(root)
    if job.format == "mbox":
        ends: dict[str, int] = {}
        for _id, record in jobs.records(vault, job, up_to=job.last_message):
            if record.get("mbox"):
                path, end = record["mbox"]
                ends[path] = max(end, ends.get(path, 0))
        mbox.cut_back(root, ends)
    mboxes = mbox.MboxFiles(root)
    try:
        with _workers(vault, job.total - job.done) as pool:
            position = job.done
            current = None
            after: int | None = job.last_message
            while True:
                ids = jobs.next_ids(vault, job, after, BATCH) if after is not None else []
                # The next batch is read and handed to the workers before the current one
                # is written, so they build while this process writes.
                upcoming = (_start(vault, job, ids, position, custodians, pool)
                            if ids else None)
                if ids:
                    after, position = ids[-1], position + len(ids)
                else:
                    after = None
                if current is not None:
                    written, errors = current.finish(writer, mboxes)
                    mboxes.flush()
                    job = jobs.checkpoint(vault, job, written, errors)
                    if progress is not None:
                        progress(job.done, job.total)
                if upcoming is None:
                    break
                current = upcoming
    finally:
        mboxes.close()
    return _finish(vault, job, root, case_name)


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


_Task = tuple[int, bytes, documents.MessageFacts, str]


def build_chunk(tasks: list[_Task]) -> list[documents.Built]:
    """In a worker: the documents of each message (position, bytes, facts, native path)."""
    extract = extractor(Limits())
    return [documents.build(position, raw, facts, native, extract)
            for position, raw, facts, native in tasks]


@dataclass
class _Item:
    """One message of a batch: its record when it failed, else what writing it needs."""

    message_id: int
    position: int
    record: dict[str, Any] | None = None
    raw: bytes = b""
    row: MessageRow | None = None
    sender: str | None = None
    native: str = ""


@dataclass
class _Started:
    """A batch read and handed to the workers, written by ``finish`` in order."""

    job: ExportJob
    items: list[_Item]
    futures: list[Future[list[documents.Built]]] = field(default_factory=list)

    def finish(self, writer: _Writer, mboxes: mbox.MboxFiles
               ) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        built = iter([b for future in self.futures for b in future.result()])
        written: list[tuple[int, dict[str, Any]]] = []
        errors = 0
        for item in self.items:
            record = item.record
            if record is None:
                record = _message(self.job, item, next(built), writer, mboxes)
            errors += record["error"] is not None
            written.append((item.message_id, record))
        return written, errors


def _start(vault: Vault, job: ExportJob, ids: list[int], done: int, custodians: list[str],
           pool: Executor) -> _Started:
    """Read a batch's messages and give their documents to the workers to build."""
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
            item.record = _error(control, message_id, "",
                                 "the message is no longer in the archive")
            continue
        try:
            raw = vault.read_raw(row)
        except StoreError as exc:
            item.record = _error(control, message_id, row.sha256, str(exc))
            continue
        came = arrivals.get(message_id, [])
        place = _place(row, parties.get(message_id, set()), custodians, job.layout)
        folder = documents.place_path(place)
        item.raw, item.row = raw, row
        item.sender = next((a.envelope_from for a in came if a.envelope_from), None)
        item.native = (f"mbox/{folder}.mbox" if job.format == "mbox"
                       else f"natives/{folder}/{control}.eml")
        facts = documents.MessageFacts(
            row=row, envelope_to=sorted({r for a in came for r in a.envelope_to}),
            sources=[a.describe() for a in came], place=place)
        tasks.append((item.position, raw, facts, item.native))
    for first in range(0, len(tasks), _CHUNK):
        started.futures.append(pool.submit(build_chunk, tasks[first:first + _CHUNK]))
    return started


def _place(row: MessageRow, parties: set[str], custodians: list[str], layout: str) -> str:
    if layout == "custodian":
        return next((c for c in custodians if c in parties), "_others")
    return row.folder or "_nofolder"


def _message(job: ExportJob, item: _Item, built: documents.Built, writer: _Writer,
             mboxes: mbox.MboxFiles) -> dict[str, Any]:
    """Write one message's native (or mbox entry) and its documents' files."""
    assert item.row is not None
    row = item.row
    files: list[list[Any]] = []
    mbox_end: list[Any] | None = None
    changed = False
    if job.format == "mbox":
        data, changed = mbox.entry(item.raw, item.sender or row.from_addr, row.date)
        mbox_end = [item.native, mboxes.append(item.native, data)]
    else:
        writer.write(item.native, item.raw)
        files.append([item.native, row.sha256, len(item.raw)])
    for path, data in built.files:
        files.append([path, *writer.write(path, data)])
    return {"documents": built.documents, "files": files, "mbox": mbox_end,
            "mbox_changed": changed, "error": None}


def _error(control: str, message_id: int, sha256: str, reason: str) -> dict[str, Any]:
    return {"documents": [], "files": [], "mbox": None, "mbox_changed": False,
            "error": {"control": control, "id": message_id, "sha256": sha256,
                      "reason": reason}}


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


def _finish(vault: Vault, job: ExportJob, root: Path, case_name: str | None) -> Finished:
    # Everything written so far reaches the disk before the summary vouches for it.
    os.sync()
    counts = {"messages": job.total, "exported": 0, "attachments": 0, "documents": 0,
              "errors": 0, "files": 0, "bytes": 0}
    errors: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    manifests = _Manifests(root)
    for _id, record in jobs.records(vault, job):
        if record["error"] is not None:
            errors.append(record["error"])
            continue
        counts["exported"] += 1
        counts["attachments"] += len(record["documents"]) - 1
        counts["documents"] += len(record["documents"])
        if record["mbox_changed"]:
            first = record["documents"][0]
            changed.append({"control": first["control"], "id": first["id"],
                            "sha256": first["sha256"]})
        for document in record["documents"]:
            manifests.add(document)
    fixed = manifests.close()
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


class _Manifests:
    """manifest.csv, manifest.json and the DAT load file, one document row at a time."""

    def __init__(self, root: Path) -> None:
        self.csv = _HashingFile(root / MANIFEST_CSV)
        self.json = _HashingFile(root / MANIFEST_JSON)
        self.dat = _HashingFile(root / LOAD_FILE)
        self.csv.write(_csv_row(MANIFEST_COLUMNS))
        self.json.write(b"[")
        self.dat.write(loadfile.header())
        self.first = True

    def add(self, document: dict[str, Any]) -> None:
        self.csv.write(_csv_row([_cell(document.get(c)) for c in MANIFEST_COLUMNS]))
        self.json.write((b"\n" if self.first else b",\n")
                        + json.dumps(document, ensure_ascii=False).encode())
        self.dat.write(loadfile.row(document))
        self.first = False

    def close(self) -> list[tuple[str, str, int]]:
        self.json.write(b"\n]\n")
        return [(MANIFEST_CSV, *self.csv.close()), (MANIFEST_JSON, *self.json.close()),
                (LOAD_FILE, *self.dat.close())]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(f"{v['name']} ({v['sha256']})" if isinstance(v, dict) else str(v)
                         for v in value)
    return str(value)


def _csv_row(values: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


def _mbox_files(root: Path) -> list[tuple[str, str, int]]:
    found = []
    for path in sorted((root / "mbox").rglob("*.mbox")):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_COPY_CHUNK):
                digest.update(chunk)
        found.append((path.relative_to(root).as_posix(), digest.hexdigest(),
                      path.stat().st_size))
    return found


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
