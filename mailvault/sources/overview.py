"""Each source at a glance, for ``status`` and ``source list`` (and the web's monitoring page):
where it points, its last run (when, how long, counts, error), its next run, and warnings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mailvault.sources import registry, runs
from mailvault.sources.definitions import SourceSpec
from mailvault.sources.schedule import next_run
from mailvault.vault import Vault

INSECURE_WARNING = "TLS certificate NOT verified (--insecure-skip-verify)"


def warnings(spec: SourceSpec) -> list[str]:
    """What a person should know is unsafe about the source."""
    found = []
    if spec.insecure_skip_verify:
        found.append(INSECURE_WARNING)
    if spec.tls == "none" and spec.host:
        found.append("no TLS: the password crosses the network in clear")
    return found


def describe(vault: Vault) -> list[dict[str, Any]]:
    """Every source with its last run, next run and warnings."""
    described = []
    for spec in registry.all_sources(vault):
        with vault.engine.connect() as conn:
            run = runs.last(conn, spec.name)
        last_start = None if run is None else datetime.fromtimestamp(run.started_at, UTC)
        upcoming = next_run(spec, last_start, datetime.now(UTC))
        described.append({
            "name": spec.name, "kind": spec.kind,
            "where": f"{spec.host}:{spec.port}" if spec.host else "this vault's gateway",
            "user": spec.user, "scope": spec.scope, "origin": spec.origin,
            "schedule": spec.interval or spec.cron or "",
            "next_run": upcoming.isoformat(timespec="seconds") if upcoming else None,
            "last_run": None if run is None else {
                "started": datetime.fromtimestamp(run.started_at, UTC).isoformat(
                    timespec="seconds"),
                "seconds": run.seconds, "status": run.status, "archived": run.archived,
                "duplicates": run.duplicates, "failed": run.failed, "error": run.error},
            "warnings": warnings(spec),
        })
    return described


def sync_lags(vault: Vault, at: int) -> list[tuple[str, str, int | None]]:
    """(name, kind, seconds since the start of its last good run, or None if none) of
    every source: what the vault holds from it is at least that fresh."""
    lags = []
    for spec in registry.all_sources(vault):
        with vault.engine.connect() as conn:
            run = runs.last_good(conn, spec.name)
        lags.append((spec.name, spec.kind, None if run is None else max(0, at - run.started_at)))
    return lags
