"""Lifecycle: the scheduled upkeep of tiers and retention (``serve`` runs ``apply`` every
``[tiers] lifecycle_every_minutes``).

One pass finishes tier moves a crash interrupted, moves mail that aged past the ``[tiers]``
rules (Active to Open after ``open_after_days``, Active or Open to Deep after
``deep_after_days``), recomputes retain-until dates so that new mail has them too, and
compacts sealed volumes with ``compact_min_free`` of their bytes released.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mailvault.capture.services import PeriodicService
from mailvault.compliance import compaction, object_lock, retention, tiers
from mailvault.errors import BusyError, ConfigError
from mailvault.store import schema
from mailvault.store.catalog import now

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext
    from mailvault.vault import Vault

ACTOR = "serve:lifecycle"
DAY = 86400


@dataclass
class LifecycleReport:
    """What one pass did."""

    resumed: list[int] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)
    retention_changed: int = 0
    compacted: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"resumed": self.resumed, "moved": self.moved,
                "retention_changed": self.retention_changed, "compacted": self.compacted}


def interval_s(vault: Vault) -> float:
    """Seconds between passes."""
    return max(1, vault.settings.tiers.lifecycle_every_minutes) * 60.0


def apply(vault: Vault, actor: str = ACTOR,
          stopping: Callable[[], bool] | None = None) -> LifecycleReport:
    """One lifecycle pass (safe to run at any time, and again after a crash); ``stopping``
    ends it early at a batch boundary."""
    report = LifecycleReport()
    for job in tiers.unfinished(vault):
        try:
            tiers.run_job(vault, job.id, stopping=stopping)
        except BusyError:
            continue  # a command or another node is moving it now
        report.resumed.append(job.id)
    settings = vault.settings.tiers
    rules = (("deep", settings.deep_after_days, ("active", "open")),
             ("open", settings.open_after_days, ("active",)))
    for target, days, sources in rules:
        if days <= 0 or (stopping is not None and stopping()):
            continue
        ids = aged(vault, sources, days)
        if ids:
            job = tiers.create_job(vault, ids, target,
                                   f"lifecycle: {'/'.join(sources)} older than {days} days",
                                   actor)
            report.moved[target] = tiers.run_job(vault, job.id, stopping=stopping).done
    if stopping is None or not stopping():
        report.retention_changed = retention.recompute(vault)
    if (stopping is None or not stopping()) and settings.compact_min_free <= 1:
        report.compacted = compaction.compact(vault, actor,
                                              min_free=settings.compact_min_free).volumes
    if stopping is None or not stopping():
        # Blobs in a bucket: upload what was sealed since, and follow retention changes.
        object_lock.upload_pending(vault)
        object_lock.refresh(vault)
    return report


def aged(vault: Vault, sources: tuple[str, ...], days: int) -> list[int]:
    """Messages in these tiers older than ``days`` (by archive date or message date)."""
    m = schema.messages
    age_from = vault.settings.tiers.lifecycle_age_from
    if age_from not in ("archived", "date"):
        raise ConfigError(f"[tiers] lifecycle_age_from must be 'archived' or 'date', "
                          f"not {age_from!r}.")
    column = m.c.archived_at if age_from == "archived" else m.c.date
    cutoff = now() - days * DAY
    with vault.engine.connect() as conn:
        return list(conn.execute(select(m.c.id).where(m.c.tier.in_(sources),
                                                      column < cutoff)
                                 .order_by(m.c.id)).scalars())


def lifecycle_service(context: ServeContext) -> PeriodicService[LifecycleReport] | None:
    """The lifecycle schedule, when [tiers] has a rule (open_after_days or deep_after_days):
    ``apply`` every ``lifecycle_every_minutes``; a pass that fails is tried again at the next
    interval, and the tier jobs it left unfinished resume then."""
    settings = context.vault.settings.tiers
    if settings.open_after_days <= 0 and settings.deep_after_days <= 0:
        return None
    return periodic_lifecycle(context.vault)


def periodic_lifecycle(vault: Vault) -> PeriodicService[LifecycleReport]:
    """The lifecycle pass as a service of ``serve`` (stopping at its next committed batch)."""
    return PeriodicService("lifecycle", lambda stopping: apply(vault, ACTOR, stopping),
                           lambda: interval_s(vault), vault)
