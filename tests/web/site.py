"""A small archive with people of every role, and in-process browsers for its web app.

``make_site`` builds the vault (mail between known parties, users for each role, a TOTP
user) and ``Site.browser()`` gives a client that talks to the app in-process through httpx's
ASGI transport, keeping cookies like a browser, from a client address of the test's choice.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import re
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from mailvault.accounts import tokens, users
from mailvault.config import WebSettings
from mailvault.vault import Vault
from mailvault.web.app import create_app
from tests.support import Attachment, build_message, copy_vault
from tests.usecases.conftest import archive, file_arrival, journal_arrival

PASSWORD = "correct horse battery staple"
ACTOR = "cli:test"
# name -> (roles, addresses)
PEOPLE: dict[str, tuple[list[str], list[str]]] = {
    "audrey": (["auditor"], []),
    "adam": (["admin"], []),
    "boss": (["admin", "auditor"], []),
    "rita": (["reviewer"], []),
    "bob": (["user"], ["bob@example.org"]),
    "dave": (["user"], ["dave@example.org"]),
}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class LoopThread:
    """An event loop running in a thread of its own: the in-process clients' requests run
    there, so they work whatever loop the test's thread has (Playwright's sync API keeps
    one running in it)."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(10)
        self.loop.close()


@dataclass
class Site:
    vault: Vault
    settings: WebSettings
    mail: dict[str, int]
    app: FastAPI
    loop: LoopThread = field(default_factory=LoopThread)

    def browser(self, client: str = "127.0.0.1", https: bool = False) -> Browser:
        transport = httpx.ASGITransport(app=self.app, client=(client, 50000),
                                       raise_app_exceptions=False)
        base = "https://testserver" if https else "http://testserver"
        return Browser(self.loop, httpx.AsyncClient(transport=transport, base_url=base))

    def token(self, user: str) -> str:
        return tokens.create_token(self.vault, user, None, ACTOR).token

    def close(self) -> None:
        self.loop.close()
        self.vault.close()


@dataclass
class Browser:
    """A cookie-keeping client of the app, driven synchronously."""

    loop: LoopThread
    client: httpx.AsyncClient
    csrf: str = ""

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._send("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self._send("POST", url, **kw)

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """Any other method (the API's PATCH, PUT and DELETE)."""
        return self._send(method, url, **kw)

    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        response = self.loop.run(self.client.request(method, url, **kw))
        found = _CSRF.search(response.text) if "text/html" in response.headers.get(
            "content-type", "") else None
        if found:
            self.csrf = found.group(1)
        return response

    def sign_in(self, name: str, password: str = PASSWORD) -> httpx.Response:
        self.get("/login")
        return self.post("/login", data={"username": name, "password": password,
                                         "csrf": self.csrf})

    def form(self, url: str, **data: str) -> httpx.Response:
        """POST a form of the archive's own pages (with this session's CSRF token)."""
        return self.post(url, data={"csrf": self.csrf, **data},
                         headers={"origin": str(self.client.base_url).rstrip("/")})


def make_site(tmp_path: Path, **settings: Any) -> Site:
    """A copy of the prepared archive (built once per test run: archiving starts worker
    processes and each password costs an Argon2 hash), opened with these [web] settings."""
    template, mail = _template()
    vault = Vault.open(copy_vault(template, tmp_path / "vault"))
    web = WebSettings(**settings)
    return Site(vault, web, dict(mail), create_app(vault, web))


@functools.cache
def _template() -> tuple[Path, dict[str, int]]:
    folder = Path(tempfile.mkdtemp(prefix="mailvault-web-"))
    atexit.register(shutil.rmtree, folder, True)
    with _build(folder / "vault") as (vault, mail):
        del vault
    return folder / "vault", mail


@contextlib.contextmanager
def _build(path: Path) -> Iterator[tuple[Vault, dict[str, int]]]:
    vault = Vault.create(path)
    vault.settings.accounts.min_password_length = 8
    for name, (roles, addresses) in PEOPLE.items():
        users.add_user(vault, name, roles, addresses, PASSWORD, ACTOR)
    to_bob = build_message(subject="lunch plans", sender="alice@example.org",
                           to=("bob@example.org",), message_id="<lunch@example.org>")
    reply = build_message(subject="Re: lunch plans", sender="bob@example.org",
                          to=("alice@example.org",),
                          headers=[("In-Reply-To", "<lunch@example.org>")])
    to_dave = build_message(subject="quarterly numbers", sender="carol@corp.example.com",
                            to=("dave@example.org",))
    with_file = build_message(subject="the contract", sender="dave@example.org",
                              to=("frank@example.org",),
                              attachments=[Attachment("contract.txt", b"signed\n",
                                                      "text/plain")])
    secret = build_message(subject="board minutes", sender="heidi@example.org",
                           to=("ivan@example.org",))
    ids = archive(vault, [(to_bob, file_arrival("1")), (reply, file_arrival("2")),
                          (to_dave, journal_arrival("dave@example.org",
                                                    sender="carol@corp.example.com")),
                          (with_file, file_arrival("4")), (secret, file_arrival("5"))])
    mail = dict(zip(("to_bob", "reply", "to_dave", "with_file", "secret"), ids, strict=True))
    try:
        yield vault, mail
    finally:
        vault.close()


def site_fixture(tmp_path: Path, **settings: Any) -> Iterator[Site]:
    built = make_site(tmp_path, **settings)
    try:
        yield built
    finally:
        built.close()
