"""The catalog's database, SQLite or PostgreSQL: the one place that knows which.

Everything else writes portable SQLAlchemy Core. What differs between the two is here:

- opening: a SQLite file in the vault folder (WAL, ``synchronous=FULL``), or a PostgreSQL URL
  from ``[catalog] url`` (``postgresql://USER@HOST:PORT/DATABASE``) whose password never sits
  in the URL or the vault: it comes from ``[catalog] password_file`` or from libpq's own
  ``PGPASSWORD`` / ``~/.pgpass`` (``PGPASSFILE``);
- ``insert_ignoring`` and ``upsert``: ``INSERT ... ON CONFLICT`` (SQLite >= 3.24 and
  PostgreSQL share it; SQLAlchemy has one construct per dialect, chosen here);
- ``serialize_writers``: SQLite has one writer at a time by construction; on PostgreSQL a
  transaction that must not interleave with another writer (an audit entry chained to the
  one before it, a batch whose message ids the index watermark must see in order) takes a
  transaction-level advisory lock, released at its commit or rollback;
- ``clock``: the time job leases are measured by (the database server's on PostgreSQL, so
  that nodes whose clocks differ agree on when a lease has run out);
- a full disk, which each database reports in its own words.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.sql.dml import Insert

from mailvault.errors import ConfigError, StorageFullError, VaultError
from mailvault.password_files import read_password_file
from mailvault.store import file_modes

CATALOG_FULL = "the disk is full: the catalog cannot be written."
POSTGRESQL = "postgresql"
# PostgreSQL's SQLSTATE for "disk full" (class 53, insufficient resources).
_PG_DISK_FULL = "53100"
# The advisory lock every serialized writer takes (an arbitrary 64-bit constant: "mailvlt").
_WRITER_LOCK = 0x6D61696C766C74


def is_postgresql_url(url: str) -> bool:
    """Whether a ``--catalog`` / ``[catalog] url`` value names a PostgreSQL database."""
    return urlsplit(url).scheme.split("+")[0] in ("postgresql", "postgres")


def check_url(url: str) -> str:
    """The URL as it is kept in ``mailvault.toml``, or ConfigError in one sentence: only
    PostgreSQL is taken, and never with a password in it."""
    if not is_postgresql_url(url):
        raise ConfigError(f"the catalog URL {url!r} is not a postgresql:// URL.")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"the catalog URL {url!r} cannot be read: {exc}.") from exc
    if parsed.password is not None:
        raise ConfigError("the catalog URL must not hold a password: give it in a file "
                          "([catalog] password_file), PGPASSWORD or ~/.pgpass.")
    if not parsed.database:
        raise ConfigError(f"the catalog URL {url!r} names no database.")
    return url


def open_engine(sqlite_path: Path, url: str = "", password_file: str = "") -> Engine:
    """The catalog's engine: the SQLite file at ``sqlite_path`` when ``url`` is empty, else
    the PostgreSQL database ``url`` names."""
    if url:
        return _postgresql_engine(check_url(url), password_file)
    return sqlite_engine(sqlite_path)


def sqlite_engine(path: Path) -> Engine:
    """A SQLite catalog file: WAL mode, fsync on every commit (promise 3)."""
    if not path.exists():
        # SQLite gives its -wal and -shm files the mode of the database file: creating that
        # owner-only first makes all three so, whatever the umask.
        try:
            os.close(file_modes.open_new(path, os.O_WRONLY))
        except OSError as exc:
            raise VaultError(f"the catalog cannot be created in {path.parent}: "
                             f"{exc.strerror}.") from exc
    engine = create_engine(f"sqlite:///{path}", future=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # A batch of new mail dirties a page of each random-keyed index (SHA-256,
        # Message-ID, addresses) per message. With SQLite's 2 MB default cache a large
        # catalog's batch spilled dirty pages to the WAL before its commit and read index
        # pages back again and again; with checkpoints every 1,000 pages the same pages went
        # to the database file after nearly every batch. At 1M messages this halves the
        # page reads and writes of an import (docs/benchmarks.md, "Scale builds"). The
        # cache is a ceiling per connection, filled only as pages are read.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.close()

    _translate_disk_full(engine)
    return engine


def _postgresql_engine(url: str, password_file: str) -> Engine:
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if password_file:
        connect_args["password"] = read_password_file(Path(password_file))
    # pool_pre_ping: a node outlives server restarts and idle timeouts of its connections.
    engine = create_engine(parsed, connect_args=connect_args, pool_pre_ping=True,
                           future=True)
    _translate_disk_full(engine)
    return engine


def _translate_disk_full(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def _disk_full(context: Any) -> BaseException | None:
        # Any statement or commit that meets a full disk (an audit entry of a search, a
        # watermark, a batch) says so in the one error callers answer with "try again later".
        return StorageFullError(CATALOG_FULL) if is_disk_full(context.original_exception) \
            else None


def is_disk_full(error: BaseException | None) -> bool:
    """Whether a driver's error says the catalog's disk is full."""
    if isinstance(error, sqlite3.OperationalError):
        return "full" in str(error).lower()
    return getattr(error, "sqlstate", None) == _PG_DISK_FULL


def is_postgresql(conn: Connection) -> bool:
    """Whether this connection's catalog is PostgreSQL."""
    return conn.dialect.name == POSTGRESQL


def _insert(conn: Connection, table: Table) -> Any:
    return (pg_dialect.insert(table) if is_postgresql(conn)
            else sqlite_dialect.insert(table))


def insert_ignoring(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING``: rows whose key is already there are skipped."""
    statement: Insert = _insert(conn, table).on_conflict_do_nothing()
    return statement


def upsert(conn: Connection, table: Table, keys: list[str], values: dict[str, Any]) -> None:
    """Insert one row, or update the row with the same ``keys`` to ``values``."""
    statement = _insert(conn, table).values(**values)
    conn.execute(statement.on_conflict_do_update(
        index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}))


def serialize_writers(conn: Connection) -> None:
    """Wait until no other serialized writer is inside a transaction, and hold that until this
    transaction ends (PostgreSQL's transaction-level advisory lock; SQLite's single writer
    already does this). Taking it twice in one transaction is harmless."""
    if is_postgresql(conn):
        conn.execute(_TAKE_WRITER_LOCK, {"key": _WRITER_LOCK})


_TAKE_WRITER_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def last_ids(conn: Connection) -> dict[str, int]:
    """The last id each table with never-reused ids has handed out (SQLite's
    ``sqlite_sequence``, PostgreSQL's serial sequences; a disposed message's id is in it
    though its row is gone)."""
    if is_postgresql(conn):
        found: dict[str, int] = {}
        for table, _column, sequence in _serials(conn):
            # The sequence's name comes from the server (pg_get_serial_sequence), quoted.
            value, called = conn.execute(text(f"SELECT last_value, is_called FROM {sequence}"))\
                .one()
            if called:
                found[table] = int(value)
        return found
    if conn.execute(text("SELECT count(*) FROM sqlite_master "
                         "WHERE name = 'sqlite_sequence'")).scalar() == 0:
        return {}
    return {name: int(seq) for name, seq in
            conn.execute(text("SELECT name, seq FROM sqlite_sequence"))}


def advance_ids(conn: Connection, last: dict[str, int]) -> None:
    """Make every table's next generated id follow both the rows it holds (copied with their
    ids) and ``last`` (the ids the source handed out): no id is ever handed out twice."""
    if is_postgresql(conn):
        for table, column, sequence in _serials(conn):
            held = conn.execute(text(f'SELECT coalesce(max("{column}"), 0) FROM "{table}"'))\
                .scalar() or 0
            value = max(int(held), last.get(table, 0))
            if value > 0:
                conn.execute(text("SELECT setval(:sequence, :value)"),
                             {"sequence": sequence, "value": value})
        return
    for table, value in last.items():
        held = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :name"),
                            {"name": table}).scalar()
        if held is None:
            conn.execute(text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
                         {"name": table, "seq": value})
        elif int(held) < value:
            conn.execute(text("UPDATE sqlite_sequence SET seq = :seq WHERE name = :name"),
                         {"name": table, "seq": value})


def _serials(conn: Connection) -> list[tuple[str, str, str]]:
    """(table, column, sequence) of every serial column of the catalog's schema."""
    return [(row.table_name, row.column_name, row.sequence) for row in conn.execute(text(
        "SELECT table_name, column_name, "
        "pg_get_serial_sequence(quote_ident(table_name), column_name) AS sequence "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND column_default LIKE 'nextval(%'"))]


def clock(conn: Connection) -> float:
    """Seconds since the epoch as the catalog's server sees them: PostgreSQL's clock for a
    shared catalog (every node then measures leases by one clock), this machine's for
    SQLite (whose every writer runs on this machine)."""
    if is_postgresql(conn):
        return float(conn.execute(_SERVER_CLOCK).scalar_one())
    return time.time()


_SERVER_CLOCK = text("SELECT extract(epoch FROM clock_timestamp())")
