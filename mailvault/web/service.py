"""The web application as a `mailvault serve` service: uvicorn inside serve's own event
loop, on sockets bound here (so port 0 works and a refused address is a ConfigError). Once it
listens, the exports a stop of serve interrupted are queued again (background.py).

Without [web] tls_cert the web listens on loopback addresses only, as the SMTP endpoint
accepts mail for any recipient only from loopback: a session cookie and a password must
not cross a network in clear text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from mailvault.capture.listen import parse_listen, show_listen
from mailvault.capture.tls import check_private_key, restrict
from mailvault.config import WebSettings
from mailvault.errors import ConfigError, MailvaultError
from mailvault.sources.serving import SpoolSink
from mailvault.web.app import create_app
from mailvault.web.background import resume_interrupted_exports

if TYPE_CHECKING:
    from mailvault.capture.services import ServeContext

STARTUP_S = 10.0
log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handlers: serve's loop owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def check_listen(settings: WebSettings, listen: list[str]) -> list[tuple[str, int]]:
    """The addresses to bind; ConfigError for a non-loopback one without TLS."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("[web] tls_cert and tls_key must be set together.")
    addresses = [parse_listen(text) for text in listen]
    if not settings.tls_cert:
        for host, port in addresses:
            if not _loopback(host):
                raise ConfigError(
                    f"the web cannot listen on {show_listen(host, port)} without TLS: set "
                    "[web] tls_cert and tls_key, or listen on a loopback address "
                    "(127.0.0.1:8025).")
    return addresses


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def web_url(endpoint: str, tls: bool) -> str:
    """The address people open for a listening endpoint ('web 127.0.0.1:8025')."""
    return f"{'https' if tls else 'http'}://{endpoint.partition(' ')[2]}/"


class WebService:
    """The web application of ``mailvault serve`` (start() returns 'web HOST:PORT' per
    listener, as the other services do)."""

    name = "web"

    def __init__(self, context: ServeContext, listen: list[str]) -> None:
        self.vault = context.vault
        self.spool = context.spool
        self.settings = context.vault.settings.web
        self.addresses = check_listen(self.settings, listen)
        # Before any socket is bound: a refused key leaves nothing open behind it.
        if self.settings.tls_key:
            warning = check_private_key(self.settings.tls_key, "[web]")
            if warning is not None:
                log.warning("%s", warning)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []

    async def start(self) -> list[str]:
        opened = []
        for host, port in self.addresses:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                raise ConfigError(f"the web cannot listen on {show_listen(host, port)}: "
                                  f"{exc.strerror}.") from exc
            sock.listen(128)
            sock.setblocking(False)
            self._sockets.append(sock)
            bound = sock.getsockname()
            opened.append(f"web {show_listen(str(bound[0]), int(bound[1]))}")
        app = create_app(self.vault, self.settings,
                         SpoolSink(self.vault, self.spool, asyncio.get_running_loop()))
        config = uvicorn.Config(
            app, lifespan="off", access_log=False,
            log_config=None, server_header=False,
            ssl_certfile=self.settings.tls_cert or None,
            ssl_keyfile=self.settings.tls_key or None)
        try:
            config.load()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"[web] tls_cert/tls_key cannot be loaded: {exc}.") from exc
        if config.ssl is not None:
            restrict(config.ssl)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=self._sockets))
        deadline = asyncio.get_running_loop().time() + STARTUP_S
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise ConfigError("the web application stopped while starting.")
            if asyncio.get_running_loop().time() > deadline:
                raise ConfigError("the web application did not start in time.")
            await asyncio.sleep(0.01)
        # Exports a stop of serve interrupted go on in the job worker, as they would have;
        # a catalog that cannot say which leaves them to the page's Resume, not serve down.
        try:
            resume_interrupted_exports(app.state.web.background, self.vault)
        except MailvaultError as exc:
            log.warning("interrupted exports were not resumed: %s", exc)
        return opened

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
        for sock in self._sockets:
            sock.close()


def web_service(context: ServeContext) -> WebService | None:
    """The web application, unless configured with no listen address."""
    listen = context.overrides.get("web", context.vault.settings.web.listen)
    if not listen:
        return None
    return WebService(context, listen)
