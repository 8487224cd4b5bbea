"""Copying one catalog into another, table by table, resumable and exactly once.

``migrate`` moves an embedded vault's catalog (SQLite) into PostgreSQL, or into a new SQLite
file. Each table is copied in chunks ordered by its key (its primary key; ``message_id`` for
the two tables without one), and each chunk is committed together with the progress record
that says how far the table is copied: a run killed anywhere resumes after the last chunk
committed and never inserts a row twice, whether or not the table has a primary key. The
progress table lives in the target catalog only while the copy runs (``finish`` drops it),
so the finished catalog has the schema's tables and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
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

from mailvault.store import database, schema

PROGRESS_TABLE = "migration_progress"
# The progress row (not a table's) that names what is being copied into this catalog.
ORIGIN = "@origin"
CHUNK_ROWS = 2000

_progress = Table(PROGRESS_TABLE, MetaData(),
                  Column("name", String(64), primary_key=True),
                  Column("done_to", Text, nullable=False))
# Rewrites a table's rows before they are inserted (volumes: where their files now are).
RowMap = Callable[[dict[str, Any]], dict[str, Any]]


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


def copy_tables(source: Engine, target: Engine, maps: dict[str, RowMap] | None = None,
                progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every table of the schema that the target has not finished; returns the rows
    inserted per table by this run. ``maps`` rewrites the rows of some tables."""
    copied: dict[str, int] = {}
    for table in schema.metadata.sorted_tables:
        copied[table.name] = _copy_table(source, target, table, (maps or {}).get(table.name),
                                         progress)
    with source.connect() as conn:
        last = database.last_ids(conn)
    with target.begin() as conn:
        database.advance_ids(conn, last)
    return copied


def finish(engine: Engine) -> None:
    """Drop the progress record: the copy is complete."""
    with engine.begin() as conn:
        _progress.drop(conn, checkfirst=True)


def row_counts(engine: Engine) -> dict[str, int]:
    """The number of rows of every table of the schema."""
    with engine.connect() as conn:
        return {table.name: int(conn.execute(select(func.count()).select_from(table))
                                .scalar() or 0)
                for table in schema.metadata.sorted_tables}


def _key(table: Table) -> list[Column[Any]]:
    columns = list(table.primary_key.columns)
    return columns or [table.c.message_id]


def _after(key: list[Column[Any]], values: list[Any]) -> ColumnElement[bool]:
    return tuple_(*key) > tuple_(*values) if len(key) > 1 else key[0] > values[0]


def _up_to(key: list[Column[Any]], values: list[Any]) -> ColumnElement[bool]:
    return tuple_(*key) <= tuple_(*values) if len(key) > 1 else key[0] <= values[0]


def _copy_table(source: Engine, target: Engine, table: Table, row_map: RowMap | None,
                progress: Callable[[str, int], None] | None) -> int:
    key = _key(table)
    with target.connect() as conn:
        done = conn.execute(select(_progress.c.done_to)
                            .where(_progress.c.name == table.name)).scalar()
    last: list[Any] | None = json.loads(done) if done is not None else None
    inserted = 0
    while True:
        with source.connect() as conn:
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
