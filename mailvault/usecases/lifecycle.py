"""Tiers and the lifecycle: moving mail between Active, Open and Deep, resuming moves,
compacting volumes, and one pass of the lifecycle rules (Permission.LIFECYCLE, the
administrator's).

A move is two steps, so that a face can show its progress under the job's number: ``start_move``
snapshots the messages into a job (audited as ``tier-move``), ``finish_move`` moves them batch
by batch (``tier-move-done`` at the end). Compaction is audited when it compacts something, and
a lifecycle pass through the moves and compaction it makes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailvault.accounts.principal import Principal, require
from mailvault.accounts.roles import Permission
from mailvault.compliance import compaction, lifecycle, tiers
from mailvault.compliance.compaction import CompactionReport
from mailvault.compliance.lifecycle import LifecycleReport
from mailvault.compliance.tiers import Job as Job  # re-exported for the faces
from mailvault.vault import Vault


@dataclass(frozen=True)
class LifecycleRules:
    """The lifecycle rules as ``[tiers]`` of mailvault.toml sets them (0 days: never)."""

    open_after_days: int
    deep_after_days: int
    age_from: str
    every_minutes: int
    compact_min_free: float

    def to_json(self) -> dict[str, Any]:
        return {"open_after_days": self.open_after_days,
                "deep_after_days": self.deep_after_days, "age_from": self.age_from,
                "every_minutes": self.every_minutes,
                "compact_min_free": self.compact_min_free}


def rules(vault: Vault, who: Principal) -> LifecycleRules:
    """The lifecycle rules in force (they are settings: changed in mailvault.toml)."""
    require(who, Permission.LIFECYCLE)
    tiers_settings = vault.settings.tiers
    return LifecycleRules(tiers_settings.open_after_days, tiers_settings.deep_after_days,
                          tiers_settings.lifecycle_age_from,
                          tiers_settings.lifecycle_every_minutes,
                          tiers_settings.compact_min_free)


def start_move(vault: Vault, who: Principal, query: str, target: str) -> Job:
    """A job moving every message the query matches to ``target`` (active, open or deep)."""
    require(who, Permission.LIFECYCLE)
    return tiers.start_move(vault, query, target, who.name)


def finish_move(vault: Vault, who: Principal, job: Job,
                progress: Callable[[int, int], None] | None = None) -> Job:
    """Move what is left of a job (safe to run again after a crash); ``progress`` hears
    (messages moved, messages in the job) after each batch."""
    require(who, Permission.LIFECYCLE)
    return tiers.run_job(vault, job.id, progress)


def unfinished_moves(vault: Vault, who: Principal) -> list[Job]:
    """Moves started and not finished (killed, or still running elsewhere)."""
    require(who, Permission.LIFECYCLE)
    return tiers.unfinished(vault)


def recent_moves(vault: Vault, who: Principal) -> list[Job]:
    """The newest tier moves, newest first, and how far each got."""
    require(who, Permission.LIFECYCLE)
    return tiers.recent_jobs(vault)


def compact(vault: Vault, who: Principal, min_free: float | None = None) -> CompactionReport:
    """Reclaim the space of moved and disposed blobs in volumes with at least ``min_free``
    of their bytes released (default: [tiers] compact_min_free); a volume still open for
    appends is sealed first, unless another process is appending to it."""
    require(who, Permission.LIFECYCLE)
    threshold = vault.settings.tiers.compact_min_free if min_free is None else min_free
    return compaction.compact(vault, who.name, min_free=threshold, include_open=True)


def run_lifecycle(vault: Vault, who: Principal) -> LifecycleReport:
    """Apply the [tiers] lifecycle rules once (``serve`` does this on a schedule)."""
    require(who, Permission.LIFECYCLE)
    return lifecycle.apply(vault, who.name)
