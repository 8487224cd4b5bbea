"""How often a source runs, as written by a person: an interval ("15m", "2h", "1d", or
seconds) or a cron expression ("*/30 * * * *", in UTC)."""

from __future__ import annotations

import re

from croniter import croniter

from mailvault.errors import ConfigError

_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_S = 60


def interval_seconds(text: str) -> int:
    """'15m' -> 900; a number alone is seconds. At least a minute."""
    match = _INTERVAL.match(text)
    if not match:
        raise ConfigError(f"an interval is a number with s, m, h or d (like 15m), not {text!r}.")
    seconds = int(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < MIN_INTERVAL_S:
        raise ConfigError(f"an interval of {text!r} is under a minute.")
    return seconds


def check(interval: str | None, cron: str | None) -> None:
    """Raise ConfigError for an interval or cron expression that cannot be used."""
    if interval:
        interval_seconds(interval)
    if cron and not croniter.is_valid(cron):
        raise ConfigError(f"{cron!r} is not a cron expression (minute hour day month weekday).")
