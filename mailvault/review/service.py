"""Review runs on a schedule while ``serve`` runs: every ``[review] every_minutes`` each
active policy is run (as ``serve:review`` in the audit log), in a worker thread; a run that
fails is logged and tried again at the next interval (a run is one transaction per policy,
so nothing is left half-done)."""

from __future__ import annotations

from mailvault.capture.services import PeriodicService, ServeContext
from mailvault.review.runs import RunReport, run_all

ACTOR = "serve:review"


def review_service(context: ServeContext) -> PeriodicService[list[RunReport]] | None:
    """The review schedule, unless ``[review] every_minutes`` is 0."""
    vault = context.vault
    if vault.settings.review.every_minutes <= 0:
        return None
    return PeriodicService("review", lambda _stopping: run_all(vault, ACTOR),
                           lambda: vault.settings.review.every_minutes * 60, vault)
