"""Days as people write them (YYYY-MM-DD), read the same way everywhere: in the query
language (``after:``), and in the options and forms that take a date (``--since``)."""

from __future__ import annotations

from datetime import UTC, datetime

from mailvault.errors import QueryError


def parse_day(value: str) -> datetime:
    """A day as YYYY-MM-DD or YYYY/MM/DD (or a full ISO date-time), in UTC."""
    text = value.replace("/", "-")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{value!r} is not a date (use YYYY-MM-DD).") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
