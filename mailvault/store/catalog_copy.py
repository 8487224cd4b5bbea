"""Copying one catalog into another, table by table, resumable and exactly once.

``migrate`` moves an embedded vault's catalog (SQLite) into PostgreSQL, or into a new SQLite
file; ``backup`` copies a PostgreSQL catalog into the backup's SQLite file, reading every
table through one connection that holds one REPEATABLE READ transaction (a snapshot), and a
restore copies that file into a PostgreSQL database again. Each table is copied in chunks
ordered by its key (its primary key; ``message_id`` for the two tables without one), and each
chunk is committed together with the progress record that says how far the table is copied:
a run killed anywhere resumes after the last chunk committed and never inserts a row twice,
whether or not the table has a primary key. The progress table lives in the target catalog
only while the copy runs (``finish`` drops it), so the finished catalog has the schema's
tables and nothing else.

What a catalog's own indexes have applied (the reindex log and their cursors over it) is not
copied, and the copy's floor is raised past the log: its index is built anew from the copied
catalog (an index folder copied along, by a backup, is rebuilt unless it had applied the whole
log).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    inspect,
    select,
    tuple_,
)
from sqlalchemy.exc import DBAPIError

from mailvault.errors import VaultError
from mailvault.store import catalog, database, schema, vault_format

PROGRESS_TABLE = "migration_progress"
# The progress row (not a table's) that names what is being copied into this catalog.
ORIGIN = "@origin"
CHUNK_ROWS = 2000

_progress = Table(PROGRESS_TABLE, MetaData(),
                  Column("name", String(64), primary_key=True),
                  Column("done_to", Text, nullable=False))
# Tables about the indexes of the catalog copied from, not about its archive.
NOT_COPIED = frozenset({schema.reindex_log.name, schema.index_cursors.name})
# Rewrites a table's rows before they are inserted (volumes: where their files now are).
RowMap = Callable[[dict[str, Any]], dict[str, Any]]
# Where rows are read from: an engine (a connection per chunk), or one connection whose open
# transaction every chunk reads (a snapshot).
Source = Engine | Connection


def check_target(engine: Engine, url: str, origin: str, resuming: bool = False) -> None:
    """Refuse, in one sentence, a target database that cannot be reached (a wrong password,
    a refused connection, no such database) or that holds tables other than those of an
    unfinished copy from ``origin`` (or of the run ``resuming`` takes up again)."""
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        # libpq's first line says it: a wrong password, a refused connection, no database.
        raise VaultError(f"the catalog database {url} cannot be used: "
                         f"{first_line(exc)}.") from exc
    if vault_format.format_of(engine) is not None and in_progress(engine) != origin \
            and not resuming:
        raise VaultError(f"the catalog database {url} already holds tables: give a new, "
                         "empty database.")


def first_line(exc: DBAPIError) -> str:
    """The driver's own first line of an error (libpq's say what went wrong there)."""
    text = str(exc.orig).strip() if exc.orig is not None else str(exc)
    return (text.splitlines() or ["no reason given"])[0].rstrip(".")


def copy_catalog(source: Source, target: Engine, origin: str,
                 maps: dict[str, RowMap] | None = None,
                 progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy the whole catalog into ``target`` (empty, or holding an unfinished copy from
    ``origin``): the schema at the newest format, every table, then the progress record
    dropped. Returns the rows this run inserted per table."""
    if in_progress(target) is None:
        begin(target, origin)
    vault_format.create(target)
    copied = copy_tables(source, target, maps, progress)
    with target.begin() as conn:
        # The log stayed behind: an index copied along (a backup's) must not trust it.
        catalog.forget_reindex_log(conn)
    finish(target)
    return copied


def in_progress(engine: Engine) -> str | None:
    """The origin a copy into this catalog was started from (None: none under way)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(PROGRESS_TABLE):
            return None
        found = conn.execute(select(_progress.c.done_to)
                             .where(_progress.c.name == ORIGIN)).scalar()
    return str(found) if found is not None else None


def begin(engine: Engine, origin: str) -> None:
    """Record that a copy from ``origin`` starts (before any table is made)."""
    with engine.begin() as conn:
        _progress.create(conn, checkfirst=True)
        database.upsert(conn, _progress, ["name"], {"name": ORIGIN, "done_to": origin})


def copy_tables(source: Source, target: Engine, maps: dict[str, RowMap] | None = None,
                progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every table of the schema that the target has not finished; returns the rows
    inserted per table by this run. ``maps`` rewrites the rows of some tables."""
    copied: dict[str, int] = {}
    for table in copied_tables():
        copied[table.name] = _copy_table(source, target, table, (maps or {}).get(table.name),
                                         progress)
    with _reading(source) as conn:
        last = {table: value for table, value in database.last_ids(conn).items()
                if table in schema.metadata.tables}
    with target.begin() as conn:
        database.advance_ids(conn, last)
    return copied


def finish(engine: Engine) -> None:
    """Drop the progress record: the copy is complete."""
    with engine.begin() as conn:
        _progress.drop(conn, checkfirst=True)


def copied_tables() -> list[Table]:
    """The schema's tables that a copy copies, in an order that respects their keys."""
    return [table for table in schema.metadata.sorted_tables if table.name not in NOT_COPIED]


def row_counts(engine: Engine) -> dict[str, int]:
    """The number of rows of every table a copy copies."""
    with engine.connect() as conn:
        return {table.name: int(conn.execute(select(func.count()).select_from(table))
                                .scalar() or 0)
                for table in copied_tables()}


def _key(table: Table) -> list[Column[Any]]:
    columns = list(table.primary_key.columns)
    return columns or [table.c.message_id]


def _after(key: list[Column[Any]], values: list[Any]) -> ColumnElement[bool]:
    return tuple_(*key) > tuple_(*values) if len(key) > 1 else key[0] > values[0]


def _up_to(key: list[Column[Any]], values: list[Any]) -> ColumnElement[bool]:
    return tuple_(*key) <= tuple_(*values) if len(key) > 1 else key[0] <= values[0]


def _reading(source: Source) -> AbstractContextManager[Connection]:
    """A connection to read with: the snapshot's own, or a new one of the engine."""
    return nullcontext(source) if isinstance(source, Connection) else source.connect()


def _copy_table(source: Source, target: Engine, table: Table, row_map: RowMap | None,
                progress: Callable[[str, int], None] | None) -> int:
    key = _key(table)
    with target.connect() as conn:
        done = conn.execute(select(_progress.c.done_to)
                            .where(_progress.c.name == table.name)).scalar()
    last: list[Any] | None = json.loads(done) if done is not None else None
    inserted = 0
    while True:
        with _reading(source) as conn:
            where = _after(key, last) if last is not None else None
            # The chunk ends at the key of its CHUNK_ROWS-th row, and takes every row with
            # that key (a table keyed by message_id holds several rows per message).
            bound_query = select(*key).order_by(*key).offset(CHUNK_ROWS - 1).limit(1)
            if where is not None:
                bound_query = bound_query.where(where)
            bound = conn.execute(bound_query).first()
            conditions = [c for c in (where, _up_to(key, list(bound)) if bound else None)
                          if c is not None]
            query = select(table).order_by(*key)
            if conditions:
                query = query.where(and_(*conditions))
            rows = [dict(row._mapping) for row in conn.execute(query)]
        if not rows:
            return inserted
        end = [rows[-1][column.name] for column in key]
        if row_map is not None:
            rows = [row_map(row) for row in rows]
        with target.begin() as conn:
            conn.execute(database.insert_ignoring(conn, table), rows)
            database.upsert(conn, _progress, ["name"],
                            {"name": table.name, "done_to": json.dumps(end)})
        inserted += len(rows)
        last = end
        if progress is not None:
            progress(table.name, len(rows))
