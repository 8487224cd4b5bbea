"""Who is asking: the signed-in person of a page (a live session, re-checked on every
request) or the holder of an API bearer token. Routes get a Principal from here and hand
it to the use cases; nothing else about the request decides what they may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from mailvault.accounts import sessions, tokens
from mailvault.accounts.principal import Principal
from mailvault.errors import AuthenticationError
from mailvault.vault import Vault
from mailvault.web import csrf
from mailvault.web.errors import SignInNeeded
from mailvault.web.state import WebState

SESSION_COOKIE = "mv_session"


def vault_of(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def web_of(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def client_of(request: Request) -> str:
    """The client's address as the connection shows it."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Viewer:
    """The person behind a page request: their principal and their session."""

    principal: Principal
    session: sessions.Session

    @property
    def csrf(self) -> str:
        return self.session.csrf


def session_of(request: Request) -> sessions.Session | None:
    """The request's live session, or None (no cookie, ended, expired, user disabled)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    web = web_of(request)
    try:
        return sessions.current(vault_of(request), token, web.settings.session_idle_minutes * 60,
                                web.settings.session_max_hours * 3600)
    except AuthenticationError:
        return None


def viewer(request: Request) -> Viewer:
    """Dependency of every page: the signed-in viewer, or off to the sign-in page."""
    session = session_of(request)
    if session is None:
        raise SignInNeeded()
    found = Viewer(session.principal, session)
    request.state.viewer = found
    return found


async def checked_form(request: Request, who: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    """Dependency of every state-changing form: the viewer, once the form's CSRF token and
    origin are checked."""
    form = await request.form()
    given = form.get(csrf.FIELD)
    csrf.check(request, who.csrf, given if isinstance(given, str) else "")
    return who


def api_principal(request: Request) -> Principal:
    """Dependency of the API: a bearer token (``Authorization: Bearer mvt_...``), or for
    reading, the browser's session."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return tokens.principal_for_token(vault_of(request), value.strip())
    if header:
        raise AuthenticationError("the API takes 'Authorization: Bearer TOKEN'.",
                                  reason="other scheme")
    session = session_of(request) if request.method in ("GET", "HEAD") else None
    if session is None:
        raise AuthenticationError("sign in, or send an API token "
                                  "('Authorization: Bearer TOKEN').", reason="no credentials")
    return session.principal


ViewerDep = Annotated[Viewer, Depends(viewer)]
FormViewerDep = Annotated[Viewer, Depends(checked_form)]
PrincipalDep = Annotated[Principal, Depends(api_principal)]
VaultDep = Annotated[Vault, Depends(vault_of)]
