"""Errors as the web shows them: one sentence on a page (or ``{"error": ...}`` under /api/),
never a traceback. The status code of each kind of MailvaultError is decided here, once."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from mailvault.errors import (
    AuthenticationError,
    BusyError,
    ConfigError,
    GatewayError,
    InputError,
    IntegrityError,
    MailvaultError,
    NotFoundError,
    PermissionDenied,
    QueryError,
    SourceError,
    StorageFullError,
    StoreError,
    VaultError,
)

log = logging.getLogger("mailvault.web")

# Most specific first: the first class an error is an instance of decides.
STATUS: tuple[tuple[type[MailvaultError], int], ...] = (
    (NotFoundError, 404),
    (PermissionDenied, 403),
    (QueryError, 400),
    # The job runs now elsewhere: the request may succeed later, as it stands.
    (BusyError, 409),
    (InputError, 400),
    (AuthenticationError, 401),
    # The mail server a request named (a restore's mailbox) refused the login or the
    # certificate, or could not be reached: the request cannot be carried out as given.
    (SourceError, 400),
    # A gateway mailbox that does not exist or refuses the act in its state.
    (GatewayError, 400),
    (StorageFullError, 507),
    (IntegrityError, 500),
    (StoreError, 503),
    (VaultError, 503),
    # Met in a request, a ConfigError is about what was sent (a source definition, a name
    # taken) or a setting it meets: the sentence says which; the server itself is fine.
    (ConfigError, 400),
    # The remote server of a source failed (login, TLS, network), not the archive.
    (SourceError, 502),
    (MailvaultError, 500),
)
INTERNAL = "something went wrong inside the archive; the error has been logged."
HTTP_SENTENCES = {404: "there is no such page.", 405: "that page cannot be used that way."}


class SignInNeeded(Exception):
    """A page was asked for without a live session: the browser goes to the sign-in page."""


class CsrfRefused(Exception):
    """A state-changing request without this session's CSRF token, or from another site."""


def status_of(exc: MailvaultError) -> int:
    """The HTTP status of an error of the tree."""
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, sentence: str) -> Response:
    """The one way an error reaches a person: JSON under /api/, a page elsewhere."""
    if is_api(request):
        response: Response = JSONResponse({"error": sentence}, status_code=status)
    else:
        templates = request.app.state.web.templates
        response = templates.TemplateResponse(
            request, "error.html", {"sentence": sentence, "status": status,
                                    "viewer": getattr(request.state, "viewer", None)},
            status_code=status)
    if status == 401 and is_api(request):
        response.headers["WWW-Authenticate"] = 'Bearer realm="mailvault"'
    return response


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a sentence."""

    @app.exception_handler(MailvaultError)
    async def mailvault_error(request: Request, exc: MailvaultError) -> Response:
        status = status_of(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(request, status, str(exc))

    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, _exc: SignInNeeded) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(CsrfRefused)
    async def csrf(request: Request, exc: CsrfRefused) -> Response:
        return error_response(request, 403, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        sentence = HTTP_SENTENCES.get(exc.status_code, str(exc.detail).rstrip(".") + ".")
        return error_response(request, exc.status_code, sentence)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = exc.errors()
        first = problems[0] if problems else {}
        where = " ".join(str(p) for p in first.get("loc", ())[1:]) or "the request"
        return error_response(request, 400, f"{where}: {first.get('msg', 'not valid')}.")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, INTERNAL)
