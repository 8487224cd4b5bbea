"""Cross-site request forgery: every state-changing form carries the session's CSRF token,
and a POST whose Origin (or Sec-Fetch-Site) says it came from another site is refused even
with one. The sign-in form, which has no session yet, carries a token that must match a
cookie set with the form (double submit), so another site cannot sign a browser in either.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request

from mailvault.web.errors import CsrfRefused

FIELD = "csrf"
LOGIN_COOKIE = "mv_login"

REFUSED = "this form was not sent from the archive's own page: reload the page and try again."


def same_site(request: Request) -> bool:
    """Whether the request comes from this site, as far as the browser says."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # No Origin: not a browser's cross-site form post (they always send one), except
        # a sandboxed document's "null", refused since mail is shown sandboxed.
        return origin is None
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.netloc.lower() == host.lower() and parts.scheme == request.url.scheme


def check(request: Request, expected: str, given: str) -> None:
    """Refuse (CsrfRefused) a form from another site or without the expected token."""
    if not same_site(request) or not given or not hmac.compare_digest(
            expected.encode(), given.encode()):
        raise CsrfRefused(REFUSED)


def new_token() -> str:
    return secrets.token_urlsafe(32)
