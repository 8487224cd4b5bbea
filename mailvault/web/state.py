"""What the web application keeps beside the vault (``app.state.web``): its settings, the
templates, the sign-in throttle, second-factor steps in progress, the OpenID client, where
a sync started from the web hands its mail, and the worker of its long jobs."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mailvault.accounts.throttle import SigninThrottle
from mailvault.config import WebSettings
from mailvault.fsnames import shown
from mailvault.sources.sync import Sink
from mailvault.web.background import Background
from mailvault.web.metrics import WebMetrics
from mailvault.web.oidc import OidcClient
from mailvault.web.part_links import PartLinks

HERE = Path(__file__).parent
# A password proven and a TOTP code awaited: how long the code step stays open.
SECOND_FACTOR_S = 300
MAX_PENDING = 10_000


@dataclass(frozen=True)
class PendingSignin:
    """A sign-in whose password was right and whose code is awaited."""

    name: str
    password: str
    client: str
    until: float


@dataclass
class PendingSignins:
    """Second-factor steps in progress, by a random ticket the code form carries.

    The password stays in this process's memory for at most SECOND_FACTOR_S, so that the
    code step checks name, password and code together (one audited sign-in) without the
    password ever going back to the browser."""

    _items: dict[str, PendingSignin] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, password: str, client: str) -> str:
        ticket = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, v in self._items.items() if v.until <= now]:
                del self._items[key]
            if len(self._items) >= MAX_PENDING:
                self._items.pop(next(iter(self._items)))
            self._items[ticket] = PendingSignin(name, password, client, now + SECOND_FACTOR_S)
        return ticket

    def take(self, ticket: str, client: str) -> PendingSignin | None:
        """The step a ticket names (once; only from the client that started it)."""
        with self._lock:
            found = self._items.pop(ticket, None)
        if found is None or found.until <= time.monotonic() or found.client != client:
            return None
        return found


def page_templates() -> Jinja2Templates:
    """The page templates: autoescaped, and every value shown as valid UTF-8 (a header or
    file name with bytes that were not UTF-8 shows them as \\xNN, as the command line
    does)."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True),
                      finalize=lambda value: shown(value) if isinstance(value, str) else value)
    env.filters["cut"] = cut
    return Jinja2Templates(env=env)


# The most of one header value (a subject, an address list) a page shows: a subject of a
# million characters would make every page that lists it megabytes long. The raw message
# and `show --json` keep it whole.
HEADER_CHARS = 1000


def cut(text: str, limit: int = HEADER_CHARS) -> str:
    """``text``, or its first ``limit`` characters followed by a note saying it was cut and
    how long it is (a template filter: ``{{ row.subject | cut }}``)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (cut: {len(text):,} characters in all)"


@dataclass
class WebState:
    """Everything the routes share besides the vault. ``sink``: under ``serve``, the spool
    that what the web brings in (a failure retried, a source synced now) goes to, since
    serve's archiver is the vault's one writer; None when the app runs alone and may run a
    pipeline itself."""

    settings: WebSettings
    secure: bool
    throttle: SigninThrottle
    oidc: OidcClient | None
    sink: Sink | None = None
    metrics: WebMetrics = field(default_factory=WebMetrics)
    templates: Jinja2Templates = field(default_factory=page_templates)
    pending: PendingSignins = field(default_factory=PendingSignins)
    part_links: PartLinks = field(default_factory=PartLinks)
    background: Background = field(default_factory=Background)
