"""Remote mailboxes: defining, listing and removing IMAP and POP3 sources, syncing them
now, and reconciling them against the vault (Permission.SOURCES, the administrator's).

Adding and removing are audited by the registry (``source-add``, ``source-remove``; never the
password), a sync by its run (``source-sync``) and the pipeline's ``ingest`` entries, a
reconciliation as ``source-reconcile``, a connection test here (``source-test``: it logs in
with the stored password or OAuth2 secret). Listing and showing are not audited: they show
settings and run counts, never a password or mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.errors import MailvaultError
from mailvault.sources import overview, registry
from mailvault.sources.definitions import SourceSpec, build
from mailvault.sources.probe import ConnectionCheck, probe
from mailvault.sources.reconcile import Reconciliation, reconcile
from mailvault.sources.report import Observer, SyncReport
from mailvault.sources.sync import Sink, sync, sync_all
from mailvault.store import audit
from mailvault.vault import Vault


@dataclass(frozen=True)
class SourceDetails:
    """A source's settings (never its password), where it is defined, and its runs."""

    spec: SourceSpec
    status: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """``source show --json``."""
        return {**self.spec.to_json(), "origin": self.spec.origin, "status": self.status}


def check_definition(values: dict[str, Any]) -> SourceSpec:
    """A source definition from form or option values, checked (one sentence for what is
    wrong), before a password is asked for; it touches no vault."""
    return build(values)


def add_source(vault: Vault, who: Principal, spec: SourceSpec, password: str) -> list[str]:
    """Keep a new source (its password sealed by the vault's keyring); returns the warnings
    a person should see about it (TLS not verified, no TLS)."""
    require(who, Permission.SOURCES)
    registry.add(vault, spec, password, who.name)
    return overview.warnings(spec)


def list_sources(vault: Vault, who: Principal) -> list[dict[str, Any]]:
    """Every source with where it points, its last run, next run and warnings."""
    require(who, Permission.SOURCES)
    return overview.describe(vault)


def show_source(vault: Vault, who: Principal, name: str) -> SourceDetails:
    """One source's settings and status."""
    require(who, Permission.SOURCES)
    spec = registry.get(vault, name)
    status = next(e for e in overview.describe(vault) if e["name"] == name)
    return SourceDetails(spec, status)


def remove_source(vault: Vault, who: Principal, name: str) -> None:
    """Forget a source and its sync state (the archived mail stays)."""
    require(who, Permission.SOURCES)
    registry.remove(vault, name, who.name)


def check_connection(vault: Vault, who: Principal, name: str) -> ConnectionCheck:
    """Log in to the source's accounts and look around, reading no mail: whether the host,
    TLS, login and scope work, before (or instead of) a sync."""
    require(who, Permission.SOURCES)
    spec = registry.get(vault, name)
    check = probe(vault, spec)
    with vault.engine.begin() as conn:
        audit.record(conn, who.name, "source-test", {
            "name": spec.name, "ok": check.ok,
            "failed": [a.account for a in check.accounts if not a.ok]})
    return check


def sync_now(vault: Vault, who: Principal, name: str | None = None,
             observer: Observer | None = None, sink: Sink | None = None) -> list[SyncReport]:
    """Bring in what is new at one source (or every source) now; ``observer`` hears each
    folder's progress. The messages go through a pipeline of this process, or to ``sink``:
    under ``serve``, whose archiver is the vault's one writer, the spool (``SpoolSink``,
    called from a worker thread, never the event loop's)."""
    require(who, Permission.SOURCES)
    specs = _chosen(vault, name)
    if not specs:
        raise MailvaultError("there are no sources to sync (add one with "
                             "'mailvault source add').")
    if sink is None:
        return sync_all(vault, specs, who.name, observer)
    return [sync(vault, spec, sink, who.name, observer) for spec in specs]


def reconcile_sources(vault: Vault, who: Principal, name: str | None = None
                      ) -> list[Reconciliation]:
    """Count each folder at one source (or every source) against the vault: archived,
    failed and missing messages with their UIDs and why."""
    require(who, Permission.SOURCES)
    return [reconcile(vault, spec, who.name) for spec in _chosen(vault, name)]


def _chosen(vault: Vault, name: str | None) -> list[SourceSpec]:
    return [registry.get(vault, name)] if name else registry.all_sources(vault)
