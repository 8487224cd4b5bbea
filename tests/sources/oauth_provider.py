"""A small OAuth2 authorization server on loopback for the XOAUTH2/OAUTHBEARER tests: a token
endpoint (client credentials; the JWT-bearer grant of a service account acting for one user)
and the token introspection endpoint (RFC 7662) that Dovecot's ``oauth2`` passdb asks."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from tests.loopback_http import QuietHandler, serving

CLIENT_ID = "mailvault-archiver"
CLIENT_SECRET = "cl1ent-s3cret-never-logged"
SERVICE_ACCOUNT = "archiver@project.iam.example.org"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass
class Provider:
    """What the server issued and what it was asked. ``mailbox`` is the one mailbox the
    client-credentials application may read (an introspection answer names one user);
    ``dead_first`` tokens are refused at introspection (as a token expired early or revoked
    is), ``refuse`` refuses every token."""

    url: str = ""
    mailbox: str = ""
    expires_in: int = 3600
    dead_first: int = 0
    refuse: bool = False
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048))
    tokens: dict[str, str] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)
    grants: list[str] = field(default_factory=list)
    introspections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def service_account_key(self) -> dict[str, Any]:
        """A Google-style service-account key file's content for this server."""
        return {"type": "service_account", "client_email": SERVICE_ACCOUNT,
                "private_key": self.key.as_pem(private=True).decode(),
                "token_uri": self.token_url}

    def issue(self, user: str) -> str:
        """A token for ``user`` (what a token command would print)."""
        token = "tok-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = user
            if self.dead_first > 0:
                self.dead_first -= 1
                self.dead.add(token)
        return token

    def grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type", "")
        if grant_type == "client_credentials":
            if form.get("client_id") != CLIENT_ID or \
                    form.get("client_secret") != CLIENT_SECRET:
                return 401, {"error": "invalid_client",
                             "error_description": "the client secret is wrong"}
            self.grants.append(f"client:{form.get('scope', '')}")
            user = self.mailbox
        elif grant_type == JWT_BEARER:
            try:
                claims = jwt.decode(form.get("assertion", ""), self.key).claims
            except (JoseError, ValueError):
                return 400, {"error": "invalid_grant", "error_description": "bad signature"}
            if claims.get("iss") != SERVICE_ACCOUNT or claims.get("aud") != self.token_url \
                    or int(claims.get("exp", 0)) < time.time():
                return 400, {"error": "invalid_grant", "error_description": "bad claims"}
            user = str(claims.get("sub", ""))
            self.grants.append(f"sub:{user}:{claims.get('scope', '')}")
        else:
            return 400, {"error": "unsupported_grant_type"}
        return 200, {"access_token": self.issue(user), "token_type": "Bearer",
                     "expires_in": self.expires_in}

    def introspect(self, token: str) -> dict[str, Any]:
        with self.lock:
            self.introspections += 1
            user = self.tokens.get(token)
            if user is None or self.refuse or token in self.dead:
                return {"active": False}
        return {"active": True, "username": user, "scope": "IMAP.AccessAsApp"}


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self.path == "/token":
                status, data = provider.grant(form)
            elif self.path == "/introspect":
                status, data = 200, provider.introspect(form.get("token", ""))
            else:
                status, data = 404, {"error": "not found"}
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    """The server on 127.0.0.1 (a free port) until the block ends."""
    provider = Provider()
    with serving(_handler(provider)) as url:
        provider.url = url
        yield provider


DOVECOT_EXTRA = """\
auth_mechanisms = plain login xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {dir}/oauth2.conf.ext
}
# Refused tokens are what these tests are about: no growing wait after each (anvil's auth
# penalty per client address, up to 15 s).
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
"""


def dovecot_files(provider: Provider) -> dict[str, str]:
    """The ``oauth2`` passdb's settings: each token posted to the introspection endpoint,
    accepted when it is active and names the user who logs in."""
    return {"oauth2.conf.ext": f"""\
introspection_mode = post
introspection_url = {provider.url}/introspect
username_attribute = username
active_attribute = active
active_value = true
"""}
