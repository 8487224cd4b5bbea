"""Shared fixtures: the real corpus beside the checkout, and fresh vaults in temp folders."""

from __future__ import annotations

import os

# pytest-xdist gives its workers COLUMNS=80 (the controller's terminal), and the command
# line's console, made when tests.support imports it, would keep that width for good;
# without it, commands under test take the width each call gives (support.invoke: 200).
os.environ.pop("COLUMNS", None)

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mailvault.vault import Vault
from tests import postgres, support
from tests import s3_server as moto
from tests.sources import dovecot
from tests.support import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def pytest_configure(config: pytest.Config) -> None:
    # Every vault a test opens serves its web application (if serve runs) on a free port, so
    # that tests (and several checkouts on one machine) never meet on 127.0.0.1:8025.
    os.environ.setdefault("MAILVAULT_WEB_LISTEN", "127.0.0.1:0")


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[dovecot.Dovecot]:
    """Debian's Dovecot with IMAP, IMAPS, POP3 and POP3S on free loopback ports."""
    server = dovecot.start()
    try:
        yield server
    finally:
        dovecot.remove(server)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[moto.MotoServer]:
    """moto's standalone S3 server (Object Lock included) on a free loopback port."""
    server = moto.start()
    try:
        yield server
    finally:
        moto.stop(server)


@pytest.fixture(scope="session", autouse=True)
def blobs_switch(request: pytest.FixtureRequest) -> Iterator[None]:
    """MAILVAULT_TEST_BLOBS=s3 runs the tests against S3: every vault they make (in this
    process or by the command line it starts) keeps its blobs in a bucket of moto's server
    ([store] blobs from the environment). Unset: local volumes, nothing started."""
    if os.environ.get("MAILVAULT_TEST_BLOBS") != "s3":
        yield
        return
    server: moto.MotoServer = request.getfixturevalue("s3_server")
    switched = {**moto.KEYS, "MAILVAULT_STORE_BLOBS": f"s3://{server.new_bucket()}/vaults",
                "MAILVAULT_STORE_S3_ENDPOINT": server.endpoint}
    before = {name: os.environ.get(name) for name in switched}
    os.environ.update(switched)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[postgres.Cluster]:
    """Debian's PostgreSQL 15: a cluster of its own in a temporary folder (as nobody under
    root), on a free port; skipped where PostgreSQL is not installed, a failure in CI."""
    reason = postgres.available()
    if reason:
        unavailable(reason)
    cluster = postgres.start()
    try:
        yield cluster
    finally:
        postgres.remove(cluster)


@pytest.fixture(scope="session")
def search_database(postgres_cluster: postgres.Cluster) -> Iterator[str]:
    """One database for the vaults the tests search in PostgreSQL (a schema each)."""
    with postgres_cluster.database() as name:
        yield name


# The switch that runs the suite against a PostgreSQL catalog (docs/postgresql.md):
# with MAILVAULT_TEST_CATALOG=postgresql every vault a test makes in this process (Vault.create,
# whoever calls it) gets its catalog in a schema of its own of one database per session, named
# in its mailvault.toml as `init --catalog` would name it, so that it opens so in this process
# and in children alike; the password is libpq's PGPASSWORD. Vaults made by a child process
# (`mailvault init` run as a program through tests.support.run) get one the same way.
@pytest.fixture(scope="session", autouse=True)
def catalog_profile(request: pytest.FixtureRequest) -> Iterator[None]:
    if support.CATALOG_PROFILE != "postgresql":
        yield
        return
    cluster: postgres.Cluster = request.getfixturevalue("postgres_cluster")
    database = cluster.create_database()
    create = Vault.create.__func__  # type: ignore[attr-defined]

    def create_in_postgresql(cls: type[Vault], path: Path, passphrase: str | None = None,
                             store: dict[str, str] | None = None, catalog_url: str = "",
                             catalog_password_file: str = "", search_backend: str = ""
                             ) -> Vault:
        if not catalog_url:
            catalog_url = cluster.schema_url(database)
        return create(cls, path, passphrase, store, catalog_url,  # type: ignore[no-any-return]
                      catalog_password_file, search_backend)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Vault, "create", classmethod(create_in_postgresql))
        patch.setattr(support, "new_catalog_url", lambda: cluster.schema_url(database))
        patch.setenv("PGPASSWORD", cluster.password)
        yield
    cluster.drop_database(database)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus (../shared/corpus); skipped where absent, a failure in CI."""
    if not CORPUS.is_dir():
        unavailable(f"the corpus is not at {CORPUS}")
    return CORPUS


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vault"


@pytest.fixture
def vault(vault_path: Path) -> Iterator[Vault]:
    """A new, empty vault with a key file."""
    opened = Vault.create(vault_path)
    try:
        yield opened
    finally:
        opened.close()


# Debian's Chromium (.ci/run installs the package); Playwright never downloads a browser here.
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium driven by Playwright, shared by the tests of one module (open a
    context of your own with ``browser.new_context()``); skipped where Chromium or
    Playwright is missing, a failure in CI. Per module, not per session: sync Playwright
    keeps an event loop running in the main thread while it lives, and tests of other
    modules call ``asyncio.run``."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()
