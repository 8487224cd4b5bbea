"""Test support: builders for messages, attachments and mail files, and the real command line.

Messages are built with the standard library's ``email`` package so that each test states
only what it cares about (a subject, a sender, an attachment) and gets real RFC 5322 bytes.
The command line is run two ways: ``run`` starts the installed ``mailvault`` program (the
contract: exit status, one-line errors on stderr, no traceback), ``invoke`` calls the same
Typer app in-process for speed where only the output matters.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import Connection
from typer.testing import CliRunner

from mailvault.cli import app
from mailvault.config import CONFIG_FILE, load_settings
from mailvault.records import Provenance
from mailvault.search import indexing
from mailvault.store import catalog_copy, vault_format
from mailvault.vault import CATALOG_FILE, Vault, open_catalog

MAILVAULT = [sys.executable, "-m", "mailvault"]
DEFAULT_DATE = datetime(2021, 3, 4, 10, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Attachment:
    """A file to attach: its name, bytes and MIME type."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


def stored_provenance(data: str) -> dict[str, Any]:
    """An arrival as the catalog keeps it (only the fields that are set), every field back."""
    return Provenance.from_json(json.loads(data)).to_json()


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose real component is missing here; in CI (CI=true), where .ci/run
    installs everything, a missing component is a failure, never a silent skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI should have this: {reason}")
    pytest.skip(reason)


# The catalog every vault a test makes gets (tests/conftest.py): "sqlite" (the vault folder's
# file) or, under MAILVAULT_TEST_CATALOG=postgresql, a schema of the session's PostgreSQL.
CATALOG_PROFILE = os.environ.get("MAILVAULT_TEST_CATALOG", "sqlite")


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """Mark a test of what only a SQLite catalog has (a file in the vault folder, its modes,
    the vault folder's disk under it): skipped, with the reason, when the tests run against
    PostgreSQL."""
    return pytest.mark.skipif(CATALOG_PROFILE == "postgresql",
                              reason=f"the catalog is SQLite's only: {reason}")


def build_message(
    subject: str = "A test message",
    sender: str = "Alice Example <alice@example.org>",
    to: Sequence[str] = ("Bob Example <bob@example.org>",),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    date: datetime = DEFAULT_DATE,
    body: str = "Hello Bob,\nthis is a test.\n",
    attachments: Iterable[Attachment] = (),
    message_id: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The raw bytes of one message with exactly these fields."""
    msg = EmailMessage()
    msg["From"] = sender
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if bcc:
        msg["Bcc"] = ", ".join(bcc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id or make_msgid(domain="example.org")
    for name, value in headers:
        msg[name] = value
    msg.set_content(body)
    for item in attachments:
        maintype, subtype = item.content_type.split("/", 1)
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype,
                           filename=item.filename)
    return msg.as_bytes()


def nested_message(levels: int, words: str = "nested") -> bytes:
    """A message that forwards a message that forwards one, ``levels`` deep: each level is
    a message/rfc822 entity whose body is the next level, the innermost one plain text.
    Level N's subject is ``{words} level N``; the innermost body has a few lines of text."""
    raw = (f"Subject: {words} level {levels}\r\nFrom: Inner <inner@example.org>\r\n"
           f"Content-Type: text/plain\r\n\r\n"
           + f"innermost {words} body text, line after line\r\n" * 4).encode()
    for level in range(levels - 1, -1, -1):
        raw = (f"Subject: {words} level {level}\r\nFrom: Level{level} <l{level}@example.org>"
               f"\r\nTo: Bob <bob@example.org>\r\nDate: Thu, 4 Mar 2021 10:30:00 +0000\r\n"
               f"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n").encode() + raw
    return raw


def pdf_with_text(text: str) -> bytes:
    """A one-page PDF whose only text is ``text`` (ASCII), written by hand: no PDF library
    is needed to make it, and any PDF reader extracts the text from it."""
    stream = f"BT /F1 24 Tf 72 700 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
        + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


def docx_with_text(text: str) -> bytes:
    """A minimal Word (Office Open XML) document holding one paragraph of ``text``."""
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("word/document.xml", document)
    return buffer.getvalue()


DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def write_eml_folder(folder: Path, messages: Sequence[bytes]) -> list[Path]:
    """One ``NNN.eml`` file per message in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, raw in enumerate(messages):
        path = folder / f"{number:04d}.eml"
        path.write_bytes(raw)
        paths.append(path)
    return paths


def write_mbox(path: Path, messages: Sequence[bytes]) -> None:
    """An mboxrd file: a From_ line before each message, ``>From `` quoting, a blank line
    between messages."""
    with open(path, "wb") as handle:
        for raw in messages:
            handle.write(b"From MAILER-DAEMON Thu Mar  4 10:30:00 2021\n")
            for line in raw.splitlines(keepends=True):
                stripped = line.lstrip(b">")
                handle.write(b">" + line if stripped.startswith(b"From ") else line)
            if not raw.endswith(b"\n"):
                handle.write(b"\n")
            handle.write(b"\n")


def write_maildir(root: Path, messages: Sequence[bytes], sub: str = "cur") -> list[Path]:
    """A Maildir (cur/, new/, tmp/) holding the messages in ``sub``."""
    for name in ("cur", "new", "tmp"):
        (root / name).mkdir(parents=True, exist_ok=True)
    paths = []
    for number, raw in enumerate(messages):
        path = root / sub / f"1614853800.{number}.test:2,S"
        path.write_bytes(raw)
        paths.append(path)
    return paths


def copy_vault(template: Path, to: Path) -> Path:
    """A copy of a vault folder whose catalog points at the copy's own volume folders (a
    test that changes a vault prepared once per session or module works on a copy). A
    catalog in PostgreSQL is copied into a new schema (``new_catalog_url``), which the
    copy's mailvault.toml then names: a copy never shares the template's catalog."""
    shutil.copytree(template, to)
    url = load_settings(template).catalog.url
    if url:
        _copy_catalog(template, to, url)
    catalog_sql(to, "UPDATE volumes SET folder = replace(folder, ?, ?)", str(template), str(to))
    return to


def _copy_catalog(template: Path, to: Path, url: str) -> None:
    if new_catalog_url is None:
        raise RuntimeError(f"{template} keeps its catalog in PostgreSQL: copying it needs "
                           "MAILVAULT_TEST_CATALOG=postgresql (a new schema for the copy)")
    copy_url = new_catalog_url()
    config = to / CONFIG_FILE
    config.write_text(config.read_text(encoding="utf-8").replace(json.dumps(url),
                                                                 json.dumps(copy_url)),
                      encoding="utf-8")
    source, target = (open_catalog(path, load_settings(path)) for path in (template, to))
    try:
        catalog_copy.begin(target, str(template))
        vault_format.create(target)
        catalog_copy.copy_tables(source, target)
        catalog_copy.finish(target)
    finally:
        source.dispose()
        target.dispose()


def write_settings(vault: Path, text: str) -> None:
    """Replace a vault's mailvault.toml with ``text``, keeping where its catalog is (the
    ``[catalog]`` and ``[search]`` sections ``init --catalog`` wrote, unless ``text`` has
    its own): a test's settings never move a vault's catalog."""
    config = vault / CONFIG_FILE
    kept = tomllib.loads(config.read_text(encoding="utf-8")) if config.exists() else {}
    given = tomllib.loads(text)
    for section in ("catalog", "search"):
        if section in kept and section not in given:
            text += f"\n[{section}]\n" + "".join(f"{name} = {json.dumps(value)}\n"
                                                 for name, value in kept[section].items())
    config.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class CatalogShell:
    """One transaction on a vault's catalog, as someone with a SQL shell beside the program
    has it: statements with ``?`` placeholders, on SQLite and PostgreSQL alike."""

    conn: Connection

    def execute(self, statement: str, *args: object) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returns, if any."""
        if args and self.conn.dialect.paramstyle != "qmark":
            statement = statement.replace("%", "%%").replace("?", "%s")
        result = self.conn.exec_driver_sql(statement, tuple(args)) if args \
            else self.conn.exec_driver_sql(statement)
        return [tuple(row) for row in result] if result.returns_rows else []


@contextlib.contextmanager
def catalog_shell(vault: Path) -> Iterator[CatalogShell]:
    """A SQL shell on a vault's catalog (the SQLite file, or the PostgreSQL database
    [catalog] url names) for one transaction, committed when the block ends."""
    engine = open_catalog(vault, load_settings(vault))
    try:
        with engine.begin() as conn:
            yield CatalogShell(conn)
    finally:
        engine.dispose()


def catalog_sql(vault: Path, statement: str, *args: object) -> list[tuple[Any, ...]]:
    """Run one statement (``?`` placeholders) on a vault's catalog in a transaction of its
    own (``catalog_shell``); committed; the rows it returns, if any."""
    with catalog_shell(vault) as shell:
        return shell.execute(statement, *args)


def catalog_bytes(vault: Path) -> bytes:
    """Everything a vault's catalog holds, to look for what must never be stored there (a
    password, a token): the SQLite files byte for byte (rows deleted but not yet overwritten
    included), or every value of every table of its PostgreSQL schema."""
    if not load_settings(vault).catalog.url:
        return b"".join(path.read_bytes() for path in sorted(vault.glob(CATALOG_FILE + "*")))
    held = []
    with catalog_shell(vault) as shell:
        for (table,) in shell.execute("SELECT tablename FROM pg_tables "
                                      "WHERE schemaname = current_schema()"):
            for row in shell.execute(f'SELECT * FROM "{table}"'):
                held += [value if isinstance(value, bytes) else str(value).encode()
                         for value in row]
    return b"\n".join(held)


# -- the command line ------------------------------------------------------------------------


# Set by tests/conftest.py under MAILVAULT_TEST_CATALOG=postgresql: a new catalog URL for each
# vault that ``run("init", ...)`` makes (the program's own Vault.create is not the patched one).
new_catalog_url: Callable[[], str] | None = None


def run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 300,
        prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[bytes]:
    """Run the real ``mailvault`` program; stdout and stderr captured as bytes."""
    if new_catalog_url is not None and args and args[0] == "init" \
            and not {"--catalog", "--from-backup"} & set(map(str, args)):
        args = (*args, "--catalog", new_catalog_url())
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([*prefix, *MAILVAULT, *map(str, args)], capture_output=True,
                          env=full_env, timeout=timeout, check=False)


@dataclass(frozen=True)
class Invoked:
    """What an in-process command printed and how it ended."""

    exit_code: int
    stdout: bytes
    stderr: str
    exception: BaseException | None

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.stdout)


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Invoked:
    """Run a command of the same Typer app in this process (fast; no error translation)."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Invoked(result.exit_code, result.stdout_bytes, result.stderr, result.exception)


def search_json(vault: Path, query: str, limit: int = 100_000) -> list[dict[str, Any]]:
    """``mailvault search QUERY --json`` as a list of rows."""
    result = invoke("search", query, "--vault", vault, "--limit", str(limit), "--json")
    assert result.exit_code == 0, result.stdout
    rows: list[dict[str, Any]] = result.json()
    return rows


def reindex_log_entries(vault: Path) -> int:
    """How many entries the vault's reindex log keeps (those not yet applied by every index
    seen lately)."""
    [(entries,)] = catalog_sql(vault, "SELECT count(*) FROM reindex_log")
    return int(entries)


# The environment variable that names this process's node (``[serve] node``): each node's
# index keeps its own cursor over the reindex log.
NODE_VARIABLE = "MAILVAULT_SERVE_NODE"


def heal(vault: Path) -> int:
    """Heal a vault's index as this process's node (``NODE_VARIABLE``) would; returns
    how many documents were written. The vault is not opened: opening heals."""
    opened = Vault(vault, load_settings(vault))
    try:
        return indexing.heal(opened)
    finally:
        opened.close()


def count(vault: Path, query: str) -> int:
    """``mailvault count QUERY`` as an integer (the output must be one number)."""
    result = invoke("count", query, "--vault", vault)
    assert result.exit_code == 0, result.stdout
    return int(result.text.strip())
