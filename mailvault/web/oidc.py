"""Sign-in through an OpenID Connect provider (authorization code flow with PKCE).

The provider's discovery document gives its endpoints; the id_token it returns is checked
here (RS256/ES256 signature against the provider's JWKS, issuer, audience, expiry, nonce)
before its ``email`` claim is believed. The archive then signs in the one existing user who
has that address (``accounts.signin.authenticate_by_address``): nobody is created.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from mailvault.errors import AuthenticationError, ConfigError
from mailvault.sources.tls import client_context

FLOW_S = 600
TIMEOUT_S = 10.0
ALGORITHMS = ("RS256", "ES256", "PS256")
REFUSED = "sign-in through the identity provider failed: try again, or sign in with a password."


@dataclass(frozen=True)
class Flow:
    """One sign-in under way at the provider: what its answer must match."""

    nonce: str
    verifier: str
    redirect_uri: str
    next_page: str
    until: float


@dataclass
class OidcClient:
    """This archive as a client of one OpenID provider."""

    issuer: str
    client_id: str
    client_secret: str
    name: str
    _discovery: dict[str, Any] | None = None
    _flows: dict[str, Flow] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def discovery(self) -> dict[str, Any]:
        """The provider's configuration (fetched once, then kept)."""
        if self._discovery is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            data = self._get_json(url)
            if data.get("issuer", "").rstrip("/") != self.issuer.rstrip("/"):
                raise AuthenticationError(REFUSED, reason="discovery names another issuer")
            self._discovery = data
        return self._discovery

    def begin(self, redirect_uri: str, next_page: str) -> tuple[str, str]:
        """(state, the provider's URL to send the browser to)."""
        config = self.discovery()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(48)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._flows.items() if v.until <= now]:
                del self._flows[key]
            self._flows[state] = Flow(nonce, verifier, redirect_uri, next_page, now + FLOW_S)
        return state, str(prepare_grant_uri(
            config["authorization_endpoint"], self.client_id, "code",
            redirect_uri=redirect_uri, scope="openid email", state=state, nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256"))

    def finish(self, state: str, code: str) -> tuple[str, str]:
        """(the verified e-mail address, the page to go on to) for the provider's answer."""
        with self._lock:
            flow = self._flows.pop(state, None)
        if flow is None or flow.until <= time.monotonic():
            raise AuthenticationError(REFUSED, reason="unknown or expired state")
        config = self.discovery()
        try:
            answer = httpx.post(config["token_endpoint"], timeout=TIMEOUT_S,
                                verify=client_context(None, False),
                                auth=(self.client_id, self.client_secret),
                                data={"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": flow.redirect_uri,
                                      "code_verifier": flow.verifier})
            answer.raise_for_status()
            id_token = str(answer.json()["id_token"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise AuthenticationError(REFUSED, reason=f"token request: {exc}") from None
        claims = self._claims(id_token, flow.nonce)
        email = claims.get("email")
        if not isinstance(email, str) or not email or claims.get("email_verified") is False:
            raise AuthenticationError(REFUSED, reason="no verified e-mail claim")
        return email, flow.next_page

    def _claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        published = self._get_json(self.discovery()["jwks_uri"])
        try:
            keys = KeySet.import_key_set(published)  # type: ignore[arg-type]
            token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
            JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise AuthenticationError(REFUSED, reason=f"id_token: {exc}") from None
        return dict(token.claims)

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            answer = httpx.get(url, timeout=TIMEOUT_S, verify=client_context(None, False))
            answer.raise_for_status()
            data = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthenticationError(REFUSED, reason=f"{url}: {exc}") from None
        if not isinstance(data, dict):
            raise AuthenticationError(REFUSED, reason=f"{url}: not a JSON object")
        return data


def oidc_client(issuer: str, client_id: str, secret_file: str, name: str) -> OidcClient | None:
    """The client [web] oidc_* describe, or None when no issuer is set."""
    if not issuer:
        return None
    if not client_id or not secret_file:
        raise ConfigError("[web] oidc_issuer needs oidc_client_id and oidc_client_secret_file.")
    try:
        with open(secret_file, encoding="utf-8") as handle:
            secret = handle.read().strip()
    except OSError as exc:
        raise ConfigError(f"[web] oidc_client_secret_file cannot be read: {exc.strerror}.") \
            from None
    return OidcClient(issuer, client_id, secret, name)
