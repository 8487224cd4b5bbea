"""Retrying a failure while `serve` runs: serve's archiver holds the vault, so the web hands
what it reads again to serve's spool; the archiver archives it and the failure settles.
Against a real served site over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailvault.compliance import storage_history
from mailvault.usecases import monitoring
from mailvault.vault import Vault
from tests.capture.conftest import WEB_AND_SMTP, Running, running_serve, start_serving, wait_until
from tests.support import write_settings
from tests.web.site import Browser, Site, site_fixture
from tests.web.test_monitoring import OPERATOR, refused_file


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Site, Running, int]]:
    for site in site_fixture(tmp_path):
        _big, failure_id = refused_file(site.vault, tmp_path)
        with running_serve(site.vault, WEB_AND_SMTP) as running:
            yield site, running, failure_id


@contextlib.contextmanager
def over_http(site: Site, running: Running) -> Iterator[Browser]:
    """A cookie-keeping client of the served web, over a real socket."""
    host, port = running.endpoints["web"]
    client = httpx.AsyncClient(base_url=f"http://{host}:{port}")
    try:
        yield Browser(site.loop, client)
    finally:
        asyncio.run_coroutine_threadsafe(client.aclose(), site.loop.loop).result(10)


def test_a_retry_under_serve_goes_through_the_spool(
        served: tuple[Site, Running, int]) -> None:
    site, running, failure_id = served
    with over_http(site, running) as adam:
        retry_and_wait(site, adam, failure_id)


def retry_and_wait(site: Site, adam: Browser, failure_id: int) -> None:
    assert adam.sign_in("adam").status_code == 303
    assert f'id="failure-{failure_id}"' in adam.get("/monitoring").text

    answer = adam.form(f"/monitoring/failures/{failure_id}/retry")
    assert answer.status_code == 200, answer.text[-500:]
    assert f"Failure {failure_id}: queued" in answer.text
    wait_until(lambda: monitoring.failures(site.vault, OPERATOR) == [],
               what="the archiver to archive the retried file")

    audrey = {"authorization": f"Bearer {site.token('audrey')}"}

    def found() -> bool:
        answer = adam.get("/api/v1/count", params={"q": "subject:report"}, headers=audrey)
        return bool(answer.json()["total"] == 1)

    wait_until(found, what="the retried message to be searchable")
    page = adam.get("/monitoring").text
    assert 'id="no-failures"' in page
    # The ingestion log names the archiver's batch of the file.
    log = page[page.index('id="ingest-log"'):page.index('id="sources"')]
    assert "report.eml" in log and "<td>serve</td>" in log


def replaced(vault: Vault, failure_id: int) -> bool:
    """Whether one failure is listed, and it is not ``failure_id``."""
    listed = monitoring.failures(vault, OPERATOR)
    return len(listed) == 1 and listed[0].id != failure_id


def test_a_retry_that_fails_again_in_the_archiver_is_listed_once(tmp_path: Path) -> None:
    for site in site_fixture(tmp_path):
        _big, failure_id = refused_file(site.vault, tmp_path)
        # serve's archiver reads its limit from mailvault.toml: still too small.
        write_settings(site.vault.path, "[ingest]\nmax_message_mb = 1\n")
        running = start_serving(site.vault, {"web": ["127.0.0.1:0"]})
        try:
            # serve samples storage per tier at start, before anyone looks.
            wait_until(lambda: bool(storage_history.samples(site.vault, 0)),  # noqa: B023
                       what="serve's first storage sample")
            with over_http(site, running) as adam:
                adam.sign_in("adam")
                adam.get("/monitoring")  # the session's CSRF token
                answer = adam.form(f"/monitoring/failures/{failure_id}/retry")
                assert f"Failure {failure_id}: queued" in answer.text
                wait_until(functools.partial(replaced, site.vault, failure_id),
                           what="the archiver to refuse the file again")
                [newer] = monitoring.failures(site.vault, OPERATOR)
                assert "too large" in newer.reason and newer.item == str(_big)
        finally:
            running.stop()
