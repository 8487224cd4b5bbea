"""Monitoring for scripts: ``/api/v1/monitoring`` (what the monitoring page shows, as JSON),
``/api/v1/failures`` and ``POST /api/v1/failures/{id}/retry`` (in the OpenAPI document), and
``GET /metrics`` in Prometheus' text format (outside /api/v1/: a scraper's address).

Who may read ``/metrics``: the figures are read through ``overview.figures`` as the principal
asking, so an ``Authorization: Bearer`` API token or a signed-in session of someone whose roles
allow monitoring (the administrator's); anyone else gets 401 or 403 and one plain-text
sentence. With ``[monitoring] metrics_loopback = true``, a client on a loopback address
without credentials may read it too, acting as ``LOOPBACK_SCRAPER`` (a Prometheus on the
archive's machine); it is off by default because behind a reverse proxy on the same machine
every client looks local. Nothing exported names a message or its content.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.errors import MailvaultError
from mailvault.usecases import monitoring, overview
from mailvault.web.api import ApiJSON
from mailvault.web.errors import status_of
from mailvault.web.identity import PrincipalDep, VaultDep, api_principal, client_of, vault_of
from mailvault.web.metrics import WebMetrics

# Who a credential-free scrape from loopback acts as (only with metrics_loopback on).
LOOPBACK_SCRAPER = Principal("metrics:loopback", frozenset({Role.ADMIN}))

router = APIRouter(prefix="/api/v1", default_response_class=ApiJSON, tags=["monitoring"])
metrics_router = APIRouter(include_in_schema=False)

Hours = Annotated[int, Query(ge=1, le=overview.MAX_HOURS,
                             description="Hours of archiving per minute to return.")]
Days = Annotated[int, Query(ge=1, le=overview.MAX_STORAGE_DAYS,
                            description="Days of storage samples to return.")]


@router.get("/monitoring", summary="The monitoring figures")
def monitoring_figures(who: PrincipalDep, vault: VaultDep, hours: Hours = 3,
                       storage_days: Days = 30) -> dict[str, Any]:
    """Archived per minute, the ingestion log, failures, sources, the SMTP endpoint, storage
    samples per tier, the index, the last verify and the audit head (administrators)."""
    return overview.overview(vault, who, hours=hours, storage_days=storage_days).to_json()


@router.get("/failures", summary="Recorded failures")
def failures(who: PrincipalDep, vault: VaultDep, resolved: bool = False) -> dict[str, Any]:
    """Failures newest first (only those not settled, unless ``resolved=true``)."""
    found = monitoring.failures(vault, who, include_resolved=resolved)
    return {"failures": [f.to_json() for f in found]}


@router.post("/failures/{failure_id}/retry", summary="Retry a failure")
def retry(request: Request, failure_id: int, who: PrincipalDep, vault: VaultDep
          ) -> dict[str, Any]:
    """Try again what the failure records (audited ``failure-retry``); under ``serve`` what
    is read again goes to the spool and the outcome is "queued"."""
    sink = request.app.state.web.sink
    return monitoring.retry_failure(vault, who, failure_id, sink=sink).to_json()


def _loopback(request: Request) -> bool:
    try:
        return ipaddress.ip_address(client_of(request)).is_loopback
    except ValueError:
        return False


def scraper(request: Request) -> Principal:
    """Who is scraping: the API's principal (token or session), or, on loopback without
    credentials and with ``metrics_loopback`` on, ``LOOPBACK_SCRAPER``."""
    settings = vault_of(request).settings.monitoring
    if (settings.metrics_loopback and "authorization" not in request.headers
            and _loopback(request)):
        return LOOPBACK_SCRAPER
    return api_principal(request)


@metrics_router.get("/metrics")
def metrics(request: Request) -> Response:
    """The Prometheus exposition."""
    try:
        figures = overview.figures(vault_of(request), scraper(request))
    except MailvaultError as exc:
        return PlainTextResponse(str(exc) + "\n", status_code=status_of(exc))
    web_metrics: WebMetrics = request.app.state.web.metrics
    return Response(web_metrics.exposition(figures), media_type=CONTENT_TYPE_LATEST)
