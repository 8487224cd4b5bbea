"""Signing in and out: ``/login`` (name and password, then a TOTP code when the account has
one), ``/login/oidc`` (an OpenID provider), ``/logout`` (POST).

Every attempt counts against the client address (``accounts/throttle.py``; the lock-out is audited)
besides the account's own lock-out (``accounts.signin``). The session cookie is HttpOnly,
SameSite=Strict, and Secure when the web is served over TLS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from mailvault.accounts.sessions import NewSession
from mailvault.errors import AuthenticationError, SecondFactorRequired
from mailvault.usecases import signing_in
from mailvault.web import csrf
from mailvault.web.errors import error_response
from mailvault.web.identity import (
    SESSION_COOKIE,
    FormViewerDep,
    client_of,
    session_of,
    vault_of,
    web_of,
)

router = APIRouter(include_in_schema=False)

OIDC_COOKIE = "mv_oidc"
THROTTLED = "too many sign-in attempts from your address: wait a few minutes and try again."


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only (never another host)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, *, sentence: str = "", status: int = 200,
                next_page: str = "/", ticket: str = "") -> Response:
    web = web_of(request)
    token = request.cookies.get(csrf.LOGIN_COOKIE) or csrf.new_token()
    response = web.templates.TemplateResponse(
        request, "code.html" if ticket else "login.html",
        {"sentence": sentence, "next": next_page, "login_csrf": token, "ticket": ticket,
         "oidc": web.oidc.name if web.oidc else "", "viewer": None},
        status_code=status)
    response.set_cookie(csrf.LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=web.secure, path="/login")
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    if session_of(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_page=safe_next(next))


def _throttled(request: Request) -> Response | None:
    """Count this attempt against the client address; a refusal page once over the limit."""
    web = web_of(request)
    client = client_of(request)
    now = time.time()
    until = web.throttle.blocked_until(client, now)
    if until is None and web.throttle.count(client, now):
        signing_in.address_throttled(vault_of(request), client, web.throttle.attempts,
                                     now + web.throttle.window_s)
    if until is not None:
        return error_response(request, 429, THROTTLED)
    return None


def _attempt(request: Request, csrf_token: str, next: str,
             step: Callable[[str, str], Response]) -> Response:
    """What both sign-in forms do around their own ``step(client, next_page)``: the form's
    CSRF check, the address throttle, and a refusal shown on the sign-in page."""
    csrf.check(request, request.cookies.get(csrf.LOGIN_COOKIE, ""), csrf_token)
    refused = _throttled(request)
    if refused is not None:
        return refused
    next_page = safe_next(next)
    try:
        return step(client_of(request), next_page)
    except AuthenticationError as exc:
        return _login_page(request, sentence=str(exc), status=401, next_page=next_page)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form(
              alias=csrf.FIELD)] = "", next: Annotated[str, Form()] = "/") -> Response:
    def step(client: str, next_page: str) -> Response:
        try:
            new = signing_in.sign_in(vault_of(request), username, password, None, client)
        except SecondFactorRequired:
            ticket = web_of(request).pending.add(username, password, client)
            return _login_page(request, next_page=next_page, ticket=ticket)
        return _signed_in(request, new, next_page)

    return _attempt(request, csrf_token, next, step)


@router.post("/login/code")
def login_code(request: Request, ticket: Annotated[str, Form()] = "",
               code: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form(
                   alias=csrf.FIELD)] = "", next: Annotated[str, Form()] = "/") -> Response:
    def step(client: str, next_page: str) -> Response:
        pending = web_of(request).pending.take(ticket, client)
        if pending is None:
            return _login_page(request, sentence="the sign-in took too long: start again.",
                               status=401, next_page=next_page)
        new = signing_in.sign_in(vault_of(request), pending.name, pending.password, code,
                                 client)
        return _signed_in(request, new, next_page)

    return _attempt(request, csrf_token, next, step)


@router.get("/login/oidc")
def login_oidc(request: Request, next: str = "/") -> Response:
    web = web_of(request)
    if web.oidc is None:
        return error_response(request, 404, "no identity provider is configured.")
    refused = _throttled(request)
    if refused is not None:
        return refused
    state, url = web.oidc.begin(_callback_url(request), safe_next(next))
    response = RedirectResponse(url, status_code=303)
    # Binds the provider's answer to this browser (Lax: the answer is a cross-site
    # navigation back to us), so nobody can sign a browser in with their own answer.
    response.set_cookie(OIDC_COOKIE, state, httponly=True, samesite="lax",
                        secure=web.secure, path="/login/oidc", max_age=600)
    return response


@router.get("/login/oidc/callback")
def login_oidc_callback(request: Request, state: str = "", code: str = "",
                        error: str = "") -> Response:
    web = web_of(request)
    if web.oidc is None:
        return error_response(request, 404, "no identity provider is configured.")
    client = client_of(request)
    try:
        if not state or request.cookies.get(OIDC_COOKIE) != state:
            raise AuthenticationError("the identity provider's answer is not for this browser: "
                                      "start again.", reason="state cookie missing")
        if error or not code:
            raise AuthenticationError("the identity provider did not sign you in.",
                                      reason=error or "no code")
        email, next_page = web.oidc.finish(state, code)
        new = signing_in.sign_in_by_address(vault_of(request), email,
                                            f"oidc {web.oidc.issuer}", client)
    except AuthenticationError as exc:
        return _login_page(request, sentence=str(exc), status=401)
    # A page, not a redirect: this request came from the provider's site, and a browser sends
    # a SameSite=Strict cookie only on navigations that start on this site.
    response = _signed_in(request, new, safe_next(next_page), page=True)
    response.delete_cookie(OIDC_COOKIE, path="/login/oidc")
    return response


def _callback_url(request: Request) -> str:
    base = web_of(request).settings.public_url.rstrip("/")
    if base:
        return base + "/login/oidc/callback"
    return str(request.url_for("login_oidc_callback"))


def _signed_in(request: Request, new: NewSession, next_page: str, page: bool = False
               ) -> Response:
    web = web_of(request)
    response: Response
    if page:
        response = web.templates.TemplateResponse(request, "signed_in.html",
                                                  {"next": next_page, "viewer": None})
    else:
        response = RedirectResponse(next_page, status_code=303)
    response.set_cookie(SESSION_COOKIE, new.token, httponly=True, samesite="strict",
                        secure=web.secure, path="/",
                        max_age=web.settings.session_max_hours * 3600)
    response.delete_cookie(csrf.LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, who: FormViewerDep) -> Response:
    signing_in.sign_out(vault_of(request), who.session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=web_of(request).secure)
    return response
