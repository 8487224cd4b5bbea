"""The monitoring page (``/monitoring``, the administrator's): archived per minute and storage
per tier as charts drawn here (SVG), the recent ingestion log, failed messages with a retry
button, every source, the SMTP endpoint's counters and spool, the index, the last verify and
the audit head. ``monitoring.html`` renders it; ``overview.overview`` gathers it.

A retry is a CSRF-checked form that calls ``monitoring.retry_failure`` (audited there). Under
``serve`` it passes serve's spool as the sink, so the retry works while the archiver holds
the vault; its outcome is shown on the page it answers with.
"""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mailvault.usecases import monitoring, overview
from mailvault.usecases.monitoring import RetryResult
from mailvault.usecases.overview import Overview
from mailvault.web import charts
from mailvault.web.identity import FormViewerDep, VaultDep, Viewer, ViewerDep, web_of

router = APIRouter(include_in_schema=False)


@router.get("/monitoring")
def monitoring_page(request: Request, who: ViewerDep, vault: VaultDep, hours: int = 3
                    ) -> Response:
    return _page(request, who, overview.overview(vault, who.principal, hours=hours), None)


@router.post("/monitoring/failures/{failure_id}/retry")
def retry(request: Request, failure_id: int, who: FormViewerDep, vault: VaultDep) -> Response:
    """Retry one failure and show the page with how it ended."""
    result = monitoring.retry_failure(vault, who.principal, failure_id,
                                      sink=web_of(request).sink)
    return _page(request, who, overview.overview(vault, who.principal), result)


def _page(request: Request, who: Viewer, seen: Overview, retried: RetryResult | None
          ) -> Response:
    by_tier: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for sample in seen.storage:
        by_tier[sample.tier].append((sample.at, sample.stored_bytes))
    hours = len(seen.per_minute) // 60 or 1
    return web_of(request).templates.TemplateResponse(request, "monitoring.html", {
        "viewer": who, "o": seen, "retried": retried,
        "archived_chart": charts.bar_chart(
            seen.per_minute, seen.minutes_from, 60,
            f"Messages archived per minute, last {hours} hours (UTC)", "archived-chart"),
        "storage_chart": charts.line_chart(
            [charts.Series(tier, points) for tier, points in sorted(by_tier.items())],
            "Bytes stored per tier", "storage-chart")})
