"""OAuth2 access tokens for IMAP logins (SASL XOAUTH2 and OAUTHBEARER), from one of three
places:

- ``command``: a program the operator names prints a fresh token (as mbsync's and
  OfflineIMAP's token commands do); it runs for every login, with the mailbox's address in
  ``MAILVAULT_OAUTH_USER``, and keeps its own refresh token;
- ``client-credentials``: the application's own token from a token endpoint (RFC 6749 4.4:
  client id and secret); Microsoft 365's application access to every mailbox it was granted.
  One token serves every mailbox of the source;
- ``service-account``: a token per mailbox through the JWT-bearer grant (RFC 7523) signed
  with a service account's key, the ``sub`` claim naming the mailbox: Google Workspace's
  domain-wide delegation.

Tokens from an endpoint are kept while they have more than ``REFRESH_MARGIN_S`` left and
fetched again before that, so a login never presents a token about to expire; a token the
server refuses is forgotten, so the reconnection that follows fetches a new one. Secrets (the
client secret, the key, the tokens) never appear in an error: what an endpoint says is
scrubbed of the secret, and the IMAP session scrubs the token (``imap.py``).
"""

from __future__ import annotations

import json
import os
import shlex
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mailvault.errors import SourceError
from mailvault.sources.definitions import (
    OAUTH_FLOWS,
    OAUTH_MECHANISMS,
    SourceSpec,
)
from mailvault.sources.imap import Bearer
from mailvault.sources.redaction import Redactor

# A token with less than this left is not presented at a login: a new one is fetched (a
# long sync logs in again after a dropped connection, and some servers end a session when
# its token expires).
REFRESH_MARGIN_S = 300.0
# Tokens whose endpoint gives no lifetime are fetched again after this long.
DEFAULT_LIFETIME_S = 3600.0
# What the JWT-bearer assertion asks for: the lifetime Google allows at most.
ASSERTION_LIFETIME_S = 3600
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
USER_VARIABLE = "MAILVAULT_OAUTH_USER"
_SHOWN_CHARS = 300


@dataclass(frozen=True)
class Granted:
    """An access token and when (on the monotonic clock) it stops being good."""

    token: str
    expires_at: float


class CommandTokens:
    """Tokens printed by the operator's program, one run per login."""

    def __init__(self, command: str, address: str, timeout_s: float) -> None:
        self._argv = shlex.split(command)
        self._address = address
        self._timeout_s = timeout_s

    def token(self) -> str:
        """The first word the command prints (a token has no spaces; a trailing newline or
        an explanation after it is not part of it)."""
        name = self._argv[0] if self._argv else "(empty)"
        try:
            done = subprocess.run(self._argv, capture_output=True, timeout=self._timeout_s,
                                  env={**os.environ, USER_VARIABLE: self._address},
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SourceError(f"the token command {name} printed no token within "
                              f"{self._timeout_s:.0f} s.", retryable=True) from None
        except OSError as exc:
            raise SourceError(f"the token command {name} cannot be run: "
                              f"{exc.strerror or exc}.") from None
        if done.returncode != 0:
            said = _last_line(done.stderr.decode("utf-8", "replace"))
            raise SourceError(f"the token command {name} failed with exit status "
                              f"{done.returncode}" + (f" ({said})." if said else "."),
                              retryable=True)
        words = done.stdout.decode("utf-8", "replace").split()
        if not words:
            raise SourceError(f"the token command {name} printed no token.", retryable=True)
        return words[0]

    def refused(self, token: str) -> None:
        """Nothing is kept: the next login runs the command again."""


class EndpointTokens:
    """Tokens from a token endpoint, kept until shortly before they expire. Shared by the
    reader threads of one sync (one lock: a single fetch when several need a token)."""

    def __init__(self, fetch: Callable[[], tuple[str, float | None]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._current: Granted | None = None

    def token(self) -> str:
        """A token with more than REFRESH_MARGIN_S left, fetched when needed."""
        with self._lock:
            now = self._clock()
            if self._current is None or self._current.expires_at - REFRESH_MARGIN_S <= now:
                started = now
                token, lifetime = self._fetch()
                self._current = Granted(token, started + (lifetime or DEFAULT_LIFETIME_S))
            return self._current.token

    def refused(self, token: str) -> None:
        """The server refused ``token`` (revoked, or expired early): fetch anew next time."""
        with self._lock:
            if self._current is not None and self._current.token == token:
                self._current = None


def bearers(spec: SourceSpec, secret: str, timeout_s: float) -> Callable[[str], Bearer]:
    """What logs in to each mailbox of the source: address -> its Bearer."""
    assert spec.auth in OAUTH_MECHANISMS and spec.oauth_flow in OAUTH_FLOWS
    mechanism = OAUTH_MECHANISMS[spec.auth]
    if spec.oauth_flow == "command":
        command = spec.token_command or ""
        return lambda address: Bearer(mechanism, CommandTokens(command, address, timeout_s))
    if spec.oauth_flow == "client-credentials":
        shared = EndpointTokens(lambda: _client_credentials(spec, secret, timeout_s))
        return lambda _address: Bearer(mechanism, shared)
    key = _service_account_key(spec, secret)
    return lambda address: Bearer(mechanism, EndpointTokens(
        lambda: _delegated(spec, key, address, timeout_s)))


def _client_credentials(spec: SourceSpec, secret: str, timeout_s: float
                        ) -> tuple[str, float | None]:
    form = {"grant_type": "client_credentials", "client_id": spec.client_id or "",
            "client_secret": secret}
    if spec.oauth_scope:
        form["scope"] = spec.oauth_scope
    return _post(spec.token_url or "", form, Redactor.of(secret), timeout_s)


def _service_account_key(spec: SourceSpec, secret: str) -> dict[str, Any]:
    try:
        key = json.loads(secret)
    except ValueError:
        key = None
    if not isinstance(key, dict) or not all(isinstance(key.get(k), str) for k in
                                            ("client_email", "private_key")):
        raise SourceError(f"the service-account key of source {spec.name!r} is not a key "
                          "file (JSON with client_email and private_key).")
    return key


def _delegated(spec: SourceSpec, key: dict[str, Any], address: str, timeout_s: float
               ) -> tuple[str, float | None]:
    """A token for ``address`` through the service account's domain-wide delegation."""
    url = spec.token_url or str(key.get("token_uri") or "")
    if not url:
        raise SourceError(f"source {spec.name!r} has no token endpoint: its service-account "
                          "key names no token_uri, and no --token-url was given.")
    # Imported here: every command's start-up would pay for them (the CLI imports sources).
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import RSAKey

    now = int(time.time())
    claims = {"iss": key["client_email"], "sub": address, "aud": url, "iat": now,
              "exp": now + ASSERTION_LIFETIME_S, "scope": spec.oauth_scope or ""}
    try:
        signing = RSAKey.import_key(key["private_key"])
        assertion = jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, signing)
    except (JoseError, ValueError, TypeError):
        raise SourceError(f"the service-account key of source {spec.name!r} holds no usable "
                          "RSA private key.") from None
    form = {"grant_type": JWT_BEARER, "assertion": assertion}
    return _post(url, form, Redactor.of(key["private_key"]), timeout_s)


def _post(url: str, form: dict[str, str], redactor: Redactor, timeout_s: float
          ) -> tuple[str, float | None]:
    """POST a grant; the token and its lifetime in seconds. What the endpoint says in a
    refusal is shown scrubbed of the secret (an endpoint might echo it)."""
    import httpx  # here, not at the top: see _delegated

    host = urlsplit(url).netloc or url
    try:
        answer = httpx.post(url, data=form, timeout=timeout_s,
                            verify=ssl.create_default_context())
    except httpx.HTTPError as exc:
        raise SourceError(f"the token endpoint {host} is unreachable: "
                          f"{redactor.scrub(str(exc)) or type(exc).__name__}.",
                          retryable=True) from None
    try:
        data = answer.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if answer.status_code >= 400 or not isinstance(data.get("access_token"), str):
        said = " ".join(str(data[k]) for k in ("error", "error_description") if data.get(k))
        said = redactor.scrub(said or answer.text.strip())[:_SHOWN_CHARS]
        raise SourceError(f"the token endpoint {host} issued no token (HTTP "
                          f"{answer.status_code}" + (f": {said})." if said else ")."),
                          retryable=answer.status_code >= 500 or answer.status_code == 429)
    lifetime = data.get("expires_in")
    try:
        seconds = float(lifetime) if lifetime is not None else None
    except (TypeError, ValueError):
        seconds = None
    return data["access_token"], seconds


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:_SHOWN_CHARS] if lines else ""
