"""The auditor's case pages: a case from opened to exported, every action a CSRF-checked
form that lands in the case's chain of custody; the export runs in the job worker, not in
the request, and shows its progress and summary hash; an interrupted one is resumed."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailvault.accounts.principal import local_operator
from mailvault.usecases import exporting
from tests.web.site import Browser, Site, site_fixture

CASE = "matter 9/a"  # a space and a slash: the name is one path segment, quoted
PATH = "/cases/matter%209%2Fa"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


def signed_in(site: Site, name: str) -> Browser:
    browser = site.browser()
    assert browser.sign_in(name).status_code == 303
    browser.get("/cases" if name in ("audrey", "boss") else "/")
    return browser


def follow(browser: Browser, answer: httpx.Response) -> httpx.Response:
    assert answer.status_code == 303, answer.text[:500]
    return browser.get(answer.headers["location"])


def notice(answer: httpx.Response) -> str:
    found = re.search(r'<p class="ok" id="notice">(.*?)</p>', answer.text, re.S)
    return html.unescape(found.group(1)) if found else ""


def cell(answer: httpx.Response, row: str, css_class: str) -> str:
    found = re.search(rf'<tr {row}>.*?<td class="{css_class}">(.*?)</td>', answer.text, re.S)
    assert found is not None, answer.text
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def custody(answer: httpx.Response) -> list[str]:
    return [html.unescape(a) for a in re.findall(r'<td class="action">(.*?)</td>',
                                                 answer.text)]


def test_a_case_from_opened_to_exported(site: Site) -> None:
    audrey = signed_in(site, "audrey")
    assert "No cases." in audrey.get("/cases").text
    page = follow(audrey, audrey.form("/cases", name=CASE, description="subpoena 17"))
    assert audrey.get("/cases").status_code == 200
    assert notice(page) == f"Case {CASE} opened."

    page = follow(audrey, audrey.form(f"{PATH}/custodians", address="Dave@Example.org"))
    assert cell(page, 'data-custodian="dave@example.org"', "count") == "2"
    page = follow(audrey, audrey.form(f"{PATH}/queries", label="contract",
                                      query="subject:contract"))
    assert cell(page, 'data-query="contract"', "count") == "1"
    follow(audrey, audrey.form(f"{PATH}/notes", text="counsel asked for Dave's mail"))
    page = follow(audrey, audrey.form(f"{PATH}/holds", hold="m9-dave",
                                      custodian="dave@example.org", reason="subpoena",
                                      owner="legal"))
    assert cell(page, 'data-hold="m9-dave"', "count") == "2"
    assert "counsel asked for Dave&#39;s mail" in page.text

    started = audrey.form(f"{PATH}/exports", folder="m9", query="party:dave@example.org",
                          fmt="eml", by="custodian")
    assert started.status_code == 303  # the request answered; the worker exports
    site.app.state.web.background.wait_idle()
    page = audrey.get(started.headers["location"])
    job = exporting.list_exports(site.vault, local_operator("test"), CASE)[0]
    assert job.state == "done" and (job.done, job.total) == (2, 2)
    assert cell(page, f'data-export="{job.id}"', "state") == "done"
    assert cell(page, f'data-export="{job.id}"', "progress") == "2 of 2"
    assert job.summary_sha256 in page.text
    summary = json.loads((site.vault.path / "exports" / "m9" / "summary.json").read_text())
    assert summary["case"] == CASE

    # Every page view is in the chain too (it counts the custodians' mail).
    assert [a for a in custody(page) if a != "case-view"] == [
        "case-create", "case-custodian", "case-query", "case-note", "hold-place", "case-hold",
        "export-start", "export-finish"]
    api = audrey.get(f"/api/v1/exports/{job.id}").json()
    assert api["progress"] == "done" and api["summary_sha256"] == job.summary_sha256

    page = follow(audrey, audrey.form(f"{PATH}/close", note="settled"))
    assert "closed" in page.text and 'id="add-custodian"' not in page.text
    refused = audrey.form(f"{PATH}/notes", text="too late")
    assert refused.status_code == 400 and "is closed" in html.unescape(refused.text)


def test_forms_without_the_token_change_nothing(site: Site) -> None:
    audrey = signed_in(site, "audrey")
    follow(audrey, audrey.form("/cases", name=CASE))
    forged = audrey.post(f"{PATH}/custodians", data={"address": "eve@example.org"},
                         headers={"origin": "http://testserver"})
    assert forged.status_code == 403
    other_site = audrey.post(f"{PATH}/custodians",
                             data={"csrf": audrey.csrf, "address": "eve@example.org"},
                             headers={"origin": "https://evil.example"})
    assert other_site.status_code == 403
    assert "eve@example.org" not in audrey.get(PATH).text


@pytest.mark.parametrize("person", ["adam", "rita", "bob"])
def test_only_auditors_see_cases(site: Site, person: str) -> None:
    audrey = signed_in(site, "audrey")
    follow(audrey, audrey.form("/cases", name=CASE))
    other = signed_in(site, person)
    assert other.get("/cases").status_code == 403
    assert other.get(PATH).status_code == 403
    assert other.form(f"{PATH}/notes", text="x").status_code == 403


def test_an_interrupted_export_is_resumed_from_the_page(site: Site) -> None:
    audrey = signed_in(site, "audrey")
    follow(audrey, audrey.form("/cases", name=CASE))
    # Started but never run: what a stop of serve in the middle of an export leaves.
    job = exporting.start_export(site.vault, local_operator("audrey"), "lunch",
                                 exporting.named_destination(site.vault, "lunch"), case=CASE)
    page = audrey.get(PATH)
    assert cell(page, f'data-export="{job.id}"', "state") == "interrupted Resume"
    resumed = audrey.form(f"{PATH}/exports/{job.id}/resume")
    site.app.state.web.background.wait_idle()
    page = follow(audrey, resumed)
    assert notice(page) == f"Export job {job.id} resumed."
    assert cell(page, f'data-export="{job.id}"', "state") == "done"
    assert "export-resume" in custody(page)
