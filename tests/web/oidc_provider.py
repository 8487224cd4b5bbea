"""A minimal OpenID Connect provider on loopback, for sign-in tests: discovery, an authorize
endpoint that signs in a chosen e-mail address at once, a token endpoint that checks the
client secret and PKCE and returns an RS256-signed id_token, and the JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.loopback_http import QuietHandler, serving

CLIENT_ID = "mailvault-test"
CLIENT_SECRET = "s3cret-of-the-client"


@dataclass
class Provider:
    issuer: str = ""
    email: str = "bob@example.org"
    email_verified: bool = True
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048,
                                                                    {"kid": "test"}))
    # When set, id_tokens are signed with this key instead (not the one the JWKS shows).
    forger: RSAKey | None = None
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: int = 0


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):

        def _json(self, data: dict[str, Any], status: int = 200) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json({"issuer": provider.issuer,
                            "authorization_endpoint": provider.issuer + "/authorize",
                            "token_endpoint": provider.issuer + "/token",
                            "jwks_uri": provider.issuer + "/jwks",
                            "response_types_supported": ["code"],
                            "id_token_signing_alg_values_supported": ["RS256"]})
            elif url.path == "/jwks":
                self._json({"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/authorize":
                code = secrets.token_urlsafe(16)
                provider.codes[code] = query
                target = query["redirect_uri"] + "?" + urlencode(
                    {"code": code, "state": query["state"]})
                self.send_response(302)
                self.send_header("location", target)
                self.send_header("content-length", "0")
                self.end_headers()
            else:
                self._json({"error": "not found"}, 404)

        def do_POST(self) -> None:
            provider.token_requests += 1
            length = int(self.headers.get("content-length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            expected = "Basic " + base64.b64encode(
                f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            asked = provider.codes.pop(form.get("code", ""), None)
            if self.headers.get("authorization") != expected or asked is None:
                self._json({"error": "invalid_grant"}, 400)
                return
            challenge = base64.urlsafe_b64encode(hashlib.sha256(
                form.get("code_verifier", "").encode()).digest()).rstrip(b"=").decode()
            if challenge != asked.get("code_challenge") or \
                    form.get("redirect_uri") != asked["redirect_uri"]:
                self._json({"error": "invalid_grant"}, 400)
                return
            now = int(time.time())
            claims = {"iss": provider.issuer, "sub": "person-1", "aud": CLIENT_ID,
                      "iat": now, "exp": now + 300, "nonce": asked["nonce"],
                      "email": provider.email, "email_verified": provider.email_verified}
            key = provider.forger or provider.key
            token = jwt.encode({"alg": "RS256", "kid": "test"}, claims, key)
            self._json({"access_token": "unused", "token_type": "Bearer", "id_token": token})

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    """A provider listening on 127.0.0.1 (a free port) until the block ends."""
    provider = Provider()
    with serving(_handler(provider)) as url:
        provider.issuer = url
        yield provider
