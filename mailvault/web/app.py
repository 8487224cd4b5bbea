"""The web application: ``create_app(vault, settings)`` builds it around one open Vault.

Nothing is global: the vault and what the routes share live on ``app.state`` and reach the
routes through dependencies (``identity.py``). Every route calls a use case with the
request's Principal; pages render Jinja2 templates, the API returns JSON, and every error is
one sentence (``errors.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from mailvault.accounts.throttle import SigninThrottle
from mailvault.config import WebSettings
from mailvault.sources.sync import Sink
from mailvault.vault import Vault
from mailvault.web import (
    api,
    api_admin,
    api_discovery,
    api_monitoring,
    api_review,
    errors,
    pages_admin,
    pages_admin_compliance,
    pages_admin_gateway,
    pages_admin_people,
    pages_admin_sources,
    pages_cases,
    pages_message,
    pages_monitoring,
    pages_restore,
    pages_review,
    pages_search,
    signin,
)
from mailvault.web.oidc import oidc_client
from mailvault.web.state import HERE, WebState

# Every response of the application (a route may set its own, as the mail frame does).
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; "
            "object-src 'none'")
HEADERS = {
    "content-security-policy": PAGE_CSP,
    "x-content-type-options": "nosniff",
    # Not no-referrer: under it a browser sends "Origin: null" with the archive's own form
    # posts, and the CSRF check needs the real origin. Other sites still learn nothing.
    "referrer-policy": "same-origin",
    "x-frame-options": "SAMEORIGIN",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def create_app(vault: Vault, settings: WebSettings | None = None, sink: Sink | None = None
               ) -> FastAPI:
    """The web application and API over ``vault`` (settings: the vault's [web] unless
    given; ``sink``: serve's spool, when the app runs inside ``serve``)."""
    settings = settings if settings is not None else vault.settings.web
    app = FastAPI(title="mailvault", version="1", openapi_url="/api/v1/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="The mailvault archive's JSON API. Authenticate with "
                              "'Authorization: Bearer TOKEN' (mailvault token create).")
    app.state.vault = vault
    app.state.web = WebState(
        settings=settings, secure=bool(settings.tls_cert),
        throttle=SigninThrottle(settings.signin_attempts, settings.signin_window_minutes * 60),
        oidc=oidc_client(settings.oidc_issuer, settings.oidc_client_id,
                         settings.oidc_client_secret_file, settings.oidc_name),
        sink=sink)
    errors.install(app)

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if app.state.web.secure:
            response.headers.setdefault("strict-transport-security", "max-age=31536000")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("cache-control", "no-store")
        return response

    app.include_router(signin.router)
    app.include_router(pages_search.router)
    app.include_router(pages_message.router)
    app.include_router(pages_monitoring.router)
    app.include_router(pages_review.router)
    app.include_router(pages_restore.router)
    app.include_router(pages_cases.router)
    app.include_router(api.router)
    app.include_router(api_review.router)
    app.include_router(api_monitoring.router)
    app.include_router(api_monitoring.metrics_router)
    for admin in (pages_admin, pages_admin_sources, pages_admin_compliance,
                  pages_admin_people, pages_admin_gateway, api_admin):
        app.include_router(admin.router)
    app.include_router(api_discovery.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app
