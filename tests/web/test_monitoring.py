"""The monitoring page, its JSON API and GET /metrics, in-process: what an administrator
sees (and that it holds no message content), retrying a failure from the page and the API
(CSRF-checked, audited), storage samples, and who may read /metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.accounts.principal import local_operator
from mailvault.compliance import storage_history
from mailvault.store import audit
from mailvault.usecases import importing, monitoring, overview
from mailvault.vault import Vault
from mailvault.web.app import create_app
from tests.support import build_message
from tests.web.site import Site, site_fixture

OPERATOR = local_operator("ops")
SUBJECTS = ("lunch plans", "quarterly numbers", "the contract", "board minutes")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


def refused_file(vault: Vault, folder: Path) -> tuple[Path, int]:
    """An .eml file refused as too large (1 MB allowed) and the id of its failure; the limit
    is raised again after the import, so a retry archives it."""
    big = folder / "report.eml"
    big.write_bytes(large_message("the large report"))
    vault.settings.ingest.workers = 1
    vault.settings.ingest.max_message_mb = 1
    importing.import_files(vault, OPERATOR, importing.plan_import([big]))
    vault.settings.ingest.max_message_mb = 25
    [failure] = monitoring.failures(vault, OPERATOR)
    return big, failure.id


def large_message(subject: str) -> bytes:
    return build_message(subject=subject, body=("y" * 76 + "\n") * 17_000)


def test_an_administrator_sees_the_figures_and_no_content(site: Site, tmp_path: Path) -> None:
    _big, failure_id = refused_file(site.vault, tmp_path)
    adam = site.browser()
    adam.sign_in("adam")
    page = adam.get("/monitoring")
    assert page.status_code == 200, page.text[:300]
    text = page.text
    for element in ('id="archived-chart"', 'id="storage-chart"', 'id="audit-head"',
                    'id="index-lag"', 'id="last-verify"', f'id="failure-{failure_id}"',
                    "too large", 'id="nav-monitoring"'):
        assert element in text, element
    # Five messages archived minutes ago: bars of the chart, and the ingestion log.
    assert "<rect " in text
    log = text[text.index('id="ingest-log"'):text.index('id="sources"')]
    assert "<td>test</td>" in log and "<td>cli:ops</td>" in log
    assert not any(subject in text for subject in SUBJECTS)
    with site.vault.engine.connect() as conn:
        seq, digest = audit.head(conn)
    assert f"{seq}:{digest}" in text
    assert "<script" not in text
    assert adam.get("/monitoring?hours=1").status_code == 200


def test_the_per_minute_counts_and_storage_samples(site: Site) -> None:
    seen = overview.overview(site.vault, OPERATOR, hours=2)
    assert sum(seen.per_minute) == len(site.mail)
    assert len(seen.per_minute) == 2 * 60 + 1
    [sample] = seen.storage
    assert (sample.tier, sample.messages) == ("active", len(site.mail))
    assert sample.stored_bytes > 0
    # Within the sampling period a read takes no new sample; an older newest one does.
    assert overview.overview(site.vault, OPERATOR).storage == [sample]
    site.vault.settings.monitoring.storage_sample_minutes = 1
    storage_history.record(site.vault, at=sample.at - 7200)
    assert storage_history.sample_if_due(site.vault) is False
    with site.vault.engine.begin() as conn:
        conn.execute(storage_history.schema.storage_samples.delete().where(
            storage_history.schema.storage_samples.c.at >= sample.at))
    assert storage_history.sample_if_due(site.vault) is True
    assert len(overview.overview(site.vault, OPERATOR).storage) == 2


def test_retrying_from_the_page_archives_the_file(site: Site, tmp_path: Path) -> None:
    _big, failure_id = refused_file(site.vault, tmp_path)
    adam = site.browser()
    adam.sign_in("adam")
    adam.get("/monitoring")
    # From another site, or without the token, the form is refused and nothing is retried.
    forged = adam.post(f"/monitoring/failures/{failure_id}/retry",
                       data={"csrf": adam.csrf}, headers={"origin": "https://evil.example"})
    assert forged.status_code == 403
    assert adam.post(f"/monitoring/failures/{failure_id}/retry",
                     data={"csrf": "wrong"}).status_code == 403
    assert [f.id for f in monitoring.failures(site.vault, OPERATOR)] == [failure_id]

    answer = adam.form(f"/monitoring/failures/{failure_id}/retry")
    assert answer.status_code == 200
    assert re.search(rf'id="retry-result"[^>]*>\s*Failure {failure_id}: settled', answer.text)
    assert 'id="no-failures"' in answer.text
    assert monitoring.failures(site.vault, OPERATOR) == []
    with site.vault.engine.connect() as conn:
        retries = [e for e in audit.entries(conn) if e.action == "failure-retry"]
    assert [(e.actor, e.detail["outcome"]) for e in retries] == [("adam", "settled")]
    # A settled failure cannot be retried again: one sentence, no traceback.
    again = adam.form(f"/monitoring/failures/{failure_id}/retry")
    assert again.status_code == 400 and "settled already" in again.text


def test_the_api_gives_the_same_figures_and_retries(site: Site, tmp_path: Path) -> None:
    _big, failure_id = refused_file(site.vault, tmp_path)
    api = site.browser()
    admin = {"authorization": f"Bearer {site.token('adam')}"}
    figures = api.get("/api/v1/monitoring", headers=admin).json()
    assert set(figures) >= {"archived_per_minute", "ingest_log", "failures", "sources",
                            "endpoint", "storage", "index", "last_verify", "audit_head"}
    assert sum(figures["archived_per_minute"]["counts"]) == len(site.mail)
    assert [f["id"] for f in figures["failures"]] == [failure_id]
    assert figures["storage"][0]["tier"] == "active"
    listed = api.get("/api/v1/failures", headers=admin).json()["failures"]
    assert [(f["id"], f["retryable"]) for f in listed] == [(failure_id, True)]

    retried = api.post(f"/api/v1/failures/{failure_id}/retry", headers=admin)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["outcome"], retried.json()["archived"]) == ("settled", 1)
    assert api.get("/api/v1/failures", headers=admin).json() == {"failures": []}
    assert len(api.get("/api/v1/failures?resolved=true", headers=admin).json()["failures"]) == 1
    auditor = {"authorization": f"Bearer {site.token('audrey')}"}
    assert api.get("/api/v1/monitoring", headers=auditor).status_code == 403
    assert api.post(f"/api/v1/failures/{failure_id}/retry", headers=auditor).status_code == 403
    openapi = api.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/monitoring", "/api/v1/failures",
            "/api/v1/failures/{failure_id}/retry"} <= set(openapi)


def _samples(text: str, name: str) -> dict[str, float]:
    """The samples of one metric family: their label text -> value."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name):
            labels, _, value = line.rpartition(" ")
            found[labels.removeprefix(name)] = float(value)
    return found


def test_metrics_for_an_administrator_only(site: Site, tmp_path: Path) -> None:
    refused_file(site.vault, tmp_path)
    client = site.browser()
    nobody = client.get("/metrics")
    assert nobody.status_code == 401 and "Traceback" not in nobody.text
    auditor = client.get("/metrics", headers={"authorization": f"Bearer {site.token('audrey')}"})
    assert auditor.status_code == 403
    admin = {"authorization": f"Bearer {site.token('adam')}"}
    for _ in range(3):
        assert client.get("/api/v1/search", params={"q": "lunch"},
                          headers={"authorization": f"Bearer {site.token('audrey')}"}
                          ).status_code == 200
    scraped = client.get("/metrics", headers=admin)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert _samples(text, "mailvault_archived_messages") == {
        '{kind="file"}': 4.0, '{kind="smtp"}': 1.0}
    assert _samples(text, "mailvault_failures") == {'{kind="eml"}': 1.0}
    assert _samples(text, "mailvault_spool_depth") == {"": 0.0}
    assert _samples(text, "mailvault_index_lag_messages") == {"": 0.0}
    assert _samples(text, "mailvault_search_seconds_count") == {'{face="api"}': 3.0}
    assert _samples(text, "mailvault_archived_bytes")['{kind="smtp"}'] > 0
    assert not any(subject in text for subject in SUBJECTS)
    # A signed-in administrator's browser may look too.
    adam = site.browser()
    adam.sign_in("adam")
    assert adam.get("/metrics").status_code == 200


def test_metrics_from_loopback_only_when_configured(site: Site) -> None:
    assert site.browser("127.0.0.1").get("/metrics").status_code == 401
    site.vault.settings.monitoring.metrics_loopback = True
    assert site.browser("127.0.0.1").get("/metrics").status_code == 200
    assert site.browser("::1").get("/metrics").status_code == 200
    assert site.browser("192.0.2.7").get("/metrics").status_code == 401
    # Credentials that are given are checked, from loopback too.
    wrong = site.browser("127.0.0.1").get("/metrics",
                                          headers={"authorization": "Bearer mvt_nonsense"})
    assert wrong.status_code == 401


def test_every_app_has_its_own_registry(site: Site) -> None:
    first, second = create_app(site.vault), create_app(site.vault)
    assert first.state.web.metrics.registry is not second.state.web.metrics.registry
    first.state.web.metrics.search_seconds.labels(face="api").observe(0.01)
    assert second.state.web.metrics.search_seconds.labels(face="api")._sum.get() == 0
