"""The archive at a glance, for the administrator's monitoring page and its JSON twin: what
archiving has been doing, what failed, every source, the capture endpoint, storage per tier
over time, the index, the last ``verify`` and the audit head.

Permission.MONITOR (the administrator's), and not audited, as ``status`` is not: it shows
counts, states, times and the names of files and sources, never a message's content (an
administrator without the auditor role reads no mail here either) nor what anyone searched
for. A read takes a storage sample when the newest is older than the sampling period
(``compliance/storage_history.py``), so the storage chart fills even without ``serve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.capture.status import read_status
from mailvault.compliance import storage_history
from mailvault.compliance.storage_history import StorageSample
from mailvault.ingest import activity
from mailvault.ingest.activity import IngestBatch
from mailvault.search import indexing
from mailvault.sources import overview as source_overview
from mailvault.store import audit
from mailvault.store.audit_head import Head
from mailvault.store.catalog import now
from mailvault.usecases import monitoring
from mailvault.usecases.monitoring import VaultStatus
from mailvault.vault import Vault

# The ingestion log: this many of the newest committed batches.
INGEST_LOG = 20
MAX_HOURS = 48
MAX_STORAGE_DAYS = 366


@dataclass(frozen=True)
class LastVerify:
    """The newest ``verify`` run, as its audit entry records it."""

    at: int
    actor: str
    ok: bool
    messages: int
    problems: int

    @property
    def recorded_at(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "actor": self.actor, "ok": self.ok, "messages": self.messages,
                "problems": self.problems}


@dataclass(frozen=True)
class Overview:
    """Everything the monitoring page shows. ``per_minute[i]`` counts the messages archived
    in the minute starting at ``minutes_from + 60 * i``."""

    at: int
    minutes_from: int
    per_minute: list[int]
    ingest_log: list[IngestBatch]
    status: VaultStatus
    storage: list[StorageSample]
    last_verify: LastVerify | None
    audit_head: Head

    @property
    def endpoint_running(self) -> bool:
        return bool(self.status.endpoint and self.status.endpoint.get("running"))

    def to_json(self) -> dict[str, Any]:
        """``GET /api/v1/monitoring``."""
        endpoint = self.status.endpoint
        return {
            "at": self.at,
            "archived_per_minute": {"from": self.minutes_from, "counts": self.per_minute},
            "ingest_log": [b.to_json() for b in self.ingest_log],
            "failures": [f.to_json() for f in self.status.failures],
            "failure_count": self.status.failure_count,
            "sources": self.status.sources,
            "endpoint": None if endpoint is None else {
                "running": bool(endpoint.get("running")),
                "endpoints": endpoint.get("endpoints", []),
                "accepted": endpoint.get("accepted", {}),
                "refused": endpoint.get("refused", {}),
                "spool_depth": int((endpoint.get("spool") or {}).get("depth", 0)),
                "spool_bytes": int((endpoint.get("spool") or {}).get("bytes", 0)),
                "last_error": endpoint.get("last_error")},
            "storage": [s.to_json() for s in self.storage],
            "index": {**self.status.index.to_json(),
                      "problem": self.status.index_problem or None},
            "last_verify": self.last_verify.to_json() if self.last_verify else None,
            "audit_head": {"seq": self.audit_head.seq, "hash": self.audit_head.hash},
        }


def overview(vault: Vault, who: Principal, *, hours: int = 3, storage_days: int = 30
             ) -> Overview:
    """The monitoring figures: archived per minute over the last ``hours``, storage samples
    of the last ``storage_days`` (one is taken first if due), and the rest as they are now."""
    require(who, Permission.MONITOR)
    hours = min(max(1, hours), MAX_HOURS)
    storage_days = min(max(1, storage_days), MAX_STORAGE_DAYS)
    state = monitoring.status(vault, who)
    storage_history.sample_if_due(vault)
    at = now()
    since = at - hours * 3600
    with vault.engine.connect() as conn:
        per_minute = activity.archived_per_minute(conn, since, at)
        batches = activity.recent_batches(conn, INGEST_LOG)
        verified = audit.last(conn, "verify")
        seq, digest = audit.head(conn)
    last_verify = None if verified is None else LastVerify(
        at=int(verified.at.timestamp()), actor=verified.actor,
        ok=bool(verified.detail.get("ok")), messages=int(verified.detail.get("messages", 0)),
        problems=int(verified.detail.get("problems", 0)))
    return Overview(at=at, minutes_from=since - since % activity.MINUTE_S,
                    per_minute=per_minute, ingest_log=batches, status=state,
                    storage=storage_history.samples(vault, at - storage_days * 86_400),
                    last_verify=last_verify, audit_head=Head(seq, digest))


@dataclass(frozen=True)
class Figures:
    """What ``GET /metrics`` exports (counts and times only; names of source kinds and of
    sources, never content)."""

    archived: dict[str, tuple[int, int]]
    failures: dict[str, int]
    spool_depth: int
    index_behind: int
    sync_lag: list[tuple[str, str, int | None]]
    accepted: dict[str, int]
    refused: dict[str, int]


def figures(vault: Vault, who: Principal) -> Figures:
    """The figures of ``GET /metrics``, read now (not audited, as ``status`` is not)."""
    require(who, Permission.MONITOR)
    with vault.engine.connect() as conn:
        archived = activity.archived_by_kind(conn)
        failures = activity.failures_by_kind(conn)
    endpoint = read_status(vault.path) or {}
    running = bool(endpoint.get("running"))
    return Figures(
        archived=archived, failures=failures,
        spool_depth=int((endpoint.get("spool") or {}).get("depth", 0)) if running else 0,
        index_behind=indexing.index_progress(vault).behind,
        sync_lag=source_overview.sync_lags(vault, now()),
        accepted={k: int(v) for k, v in (endpoint.get("accepted") or {}).items()},
        refused={k: int(v) for k, v in (endpoint.get("refused") or {}).items()})
