"""The month partitions of the PostgreSQL search table: where a date goes, making partitions
as documents arrive, and the order in which a date-ordered page reads them.

``search_documents`` is partitioned by range of ``sort_date`` (the message's date in seconds,
0 when undated): one partition per calendar month (UTC) from ``WINDOW_START`` up to
``WINDOW_END``, made when the first document of that month is written, and two made with the
table for every date outside that window: ``search_documents_before`` (undated mail, the
epoch-0 and pre-1980 dates of broken clocks) and ``search_documents_after`` (2100 on). These
two are range partitions to MINVALUE and from MAXVALUE rather than PostgreSQL's DEFAULT
partition: attaching a month to a table with a DEFAULT partition locks that partition ACCESS
EXCLUSIVE (every search reads it, so a new month would wait for running searches and make
new ones wait behind it), and a date of the window can never end up outside its month.

A new month is made by its own short transaction, outside the writer's: ``CREATE TABLE``
then ``ATTACH PARTITION``, which takes only a SHARE UPDATE EXCLUSIVE lock on the parent
(searches and the writer's inserts go on meanwhile), under a transaction-level advisory
lock and after checking that the month is still missing, so that processes on several
nodes that want the same month make it once. A month made for a write that is then rolled
back stays, empty: an empty partition costs a search nothing (see ``in_order``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, text

DOCUMENTS = "search_documents"
BEFORE = f"{DOCUMENTS}_before"
AFTER = f"{DOCUMENTS}_after"
WINDOW_START_YEAR = 1980
WINDOW_END_YEAR = 2100
WINDOW_START = int(datetime(WINDOW_START_YEAR, 1, 1, tzinfo=UTC).timestamp())
WINDOW_END = int(datetime(WINDOW_END_YEAR, 1, 1, tzinfo=UTC).timestamp())
_MONTH = re.compile(rf"{DOCUMENTS}_m(\d{{4}})(\d{{2}})")
# The high half of the advisory lock that serializes making partitions (the low half: the
# parent table's oid, so that vaults in several schemas of one database do not wait on
# each other).
_LOCK_CLASS = 0x6D76_7370


@dataclass(frozen=True)
class Partition:
    """A table that holds documents, and the sort_date range it holds: ``low`` <= sort_date
    < ``high`` (None: unbounded on that side)."""

    name: str
    low: int | None
    high: int | None


def _month_start(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def month_partition(year: int, month: int) -> Partition:
    """The partition of one calendar month (UTC)."""
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return Partition(f"{DOCUMENTS}_m{year:04d}{month:02d}", _month_start(year, month),
                     _month_start(*following))


def partition_of(sort_date: int) -> str:
    """The name of the partition that holds a document of this sort_date."""
    if sort_date < WINDOW_START:
        return BEFORE
    if sort_date >= WINDOW_END:
        return AFTER
    moment = datetime.fromtimestamp(sort_date, UTC)
    return month_partition(moment.year, moment.month).name


def bounds(name: str) -> Partition | None:
    """What a table of this name holds: a month, a side of the window, or (the table of the
    older, unpartitioned layout) every date; None for a name this module did not make."""
    if name == DOCUMENTS:
        return Partition(name, None, None)
    if name == BEFORE:
        return Partition(name, None, WINDOW_START)
    if name == AFTER:
        return Partition(name, WINDOW_END, None)
    found = _MONTH.fullmatch(name)
    if found is None:
        return None
    year, month = int(found[1]), int(found[2])
    if not (WINDOW_START_YEAR <= year < WINDOW_END_YEAR and 1 <= month <= 12):
        return None
    return month_partition(year, month)


def in_order(names: Iterable[str], newest_first: bool) -> list[Partition] | None:
    """These tables in the order their documents come in a page ordered by date (newest or
    oldest first): the ranges do not overlap, so a page is read from the first ones and the
    rest need not be read at all. None when a name is not one of ours (then the caller
    orders across the whole table instead)."""
    found = [bounds(name) for name in names]
    known = [p for p in found if p is not None]
    if len(known) != len(found):
        return None
    low = -(2**63)
    return sorted(known, key=lambda p: p.low if p.low is not None else low,
                  reverse=newest_first)


def fixed_ddl() -> list[str]:
    """The two partitions made with the table: the dates outside the window of months."""
    return [f"CREATE TABLE {BEFORE} PARTITION OF {DOCUMENTS} "
            f"FOR VALUES FROM (MINVALUE) TO ({WINDOW_START})",
            f"CREATE TABLE {AFTER} PARTITION OF {DOCUMENTS} "
            f"FOR VALUES FROM ({WINDOW_END}) TO (MAXVALUE)"]


def existing(conn: Connection) -> set[str]:
    """The names of the partitions the table has now."""
    return set(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        f"WHERE i.inhparent = CAST(to_regclass('{DOCUMENTS}') AS oid)")).scalars())


def add_months(engine: Engine, names: Sequence[str]) -> None:
    """Make these month partitions (names from ``partition_of``) if they are missing, each
    in a transaction of its own; safe against any number of processes doing the same."""
    for name in sorted(set(names)):
        partition = bounds(name)
        if partition is None or partition.low is None or partition.high is None:
            raise ValueError(f"{name} is not a month partition")
        with engine.begin() as conn:
            oid = conn.execute(text(f"SELECT CAST(to_regclass('{DOCUMENTS}') AS oid)")).scalar()
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": (_LOCK_CLASS << 32) | int(oid or 0)})
            if conn.execute(text(f"SELECT to_regclass('{name}')")).scalar() is not None:
                continue  # made meanwhile by another process
            # Columns (and NOT NULLs) as the parent's; ATTACH makes the parent's indexes on
            # the new, empty table, and the CHECK spares it the scan that proves the range.
            conn.execute(text(
                f"CREATE TABLE {name} (LIKE {DOCUMENTS}, CHECK (sort_date >= {partition.low} "
                f"AND sort_date < {partition.high}))"))
            conn.execute(text(
                f"ALTER TABLE {DOCUMENTS} ATTACH PARTITION {name} "
                f"FOR VALUES FROM ({partition.low}) TO ({partition.high})"))
