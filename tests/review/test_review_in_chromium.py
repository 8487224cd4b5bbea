"""A reviewer's day in Chromium against a real ``serve``: the queue, an item with its
lexicon hits marked (and the message's markup shown as text, never run), a decision refused
without its note and then recorded, a tag, a bulk decision; and nothing outside the queue:
another message's page is "not found", a search finds only queued mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.store import audit
from mailvault.usecases import reviewing
from mailvault.usecases.reviewing import PolicyDraft
from tests.capture.conftest import WEB_AND_SMTP, Running, running_serve
from tests.support import build_message
from tests.usecases.conftest import archive, file_arrival
from tests.web.site import PASSWORD, Site, site_fixture
from tests.web.test_in_chromium import open_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser

OFFICER = Principal("cli:officer", frozenset({Role.ADMIN}))
HOSTILE = 'lunch <img src=x id="injected"> <script>alert(1)</script>'


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Site, Running, int]]:
    """The web site with rita reviewing bob's mail that says "lunch": to_bob, the reply,
    and a message whose subject and text hold markup."""
    for site in site_fixture(tmp_path):
        raw = build_message(subject=HOSTILE, sender="alice@example.org",
                            to=("bob@example.org",), body=f"Before {HOSTILE} after.\n")
        (hostile,) = archive(site.vault, [(raw, file_arrival("hostile"))])
        reviewing.add_policy(site.vault, OFFICER, PolicyDraft(
            name="bob", supervised=("bob@example.org",), lexicon=("lunch",),
            reviewers=("rita",)))
        reviewing.run(site.vault, OFFICER)
        with running_serve(site.vault, WEB_AND_SMTP) as running:
            yield site, running, hostile


def test_a_reviewer_works_the_queue_and_sees_nothing_else(
        browser: Browser, served: tuple[Site, Running, int]) -> None:
    site, running, _hostile = served
    host, port = running.endpoints["web"]
    page, elsewhere = open_page(browser, f"http://{host}:{port}")
    page.on("dialog", lambda dialog: elsewhere.append(f"dialog {dialog.message}"))
    page.goto("/login")
    page.fill("input[name=username]", "rita")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#who")
    page.click("#nav-review")
    page.wait_for_selector("#queue")
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 3
    assert set(page.locator("#queue .reasons").all_inner_texts()) == {"lunch"}

    page.click(f"#queue a >> text={HOSTILE}")
    page.wait_for_selector("#decision")
    assert page.inner_text("#reasons") == "lunch"
    assert page.locator("#body mark").all_inner_texts() == ["lunch"]
    assert page.locator(".headers mark").all_inner_texts() == ["lunch"]
    assert HOSTILE in page.inner_text("#body") and HOSTILE in page.inner_text("#subject")
    assert page.locator("#injected").count() == 0 and page.locator("main script").count() == 0

    page.check("#decision-violation")
    page.click("#decide")
    page.wait_for_selector("#error")
    assert "needs a note" in page.inner_text("#error")
    page.go_back()
    page.wait_for_selector("#decision")
    page.check("#decision-violation")
    page.fill("#note", "markup in a subject")
    page.click("#decide")
    page.wait_for_selector("#done")
    assert page.locator("#queue tbody tr").count() == 2

    page.click("#queue tbody tr >> nth=0 >> a >> nth=0")
    page.wait_for_selector("#tags")
    page.fill("#tag", "Follow-Up")
    page.click("#add-tag")
    page.wait_for_selector("#tag-list li")
    assert page.inner_text("#tag-list").startswith("follow-up")

    page.goto("/review")
    for box in page.locator("#queue input[type=checkbox]").all():
        box.check()
    page.select_option("#bulk-decision", "no_issue")
    page.click("#bulk-decide")
    page.wait_for_selector("#empty")

    page.goto("/?q=tag:follow-up")
    assert page.inner_text("#total") == "1"
    page.goto("/")
    assert page.inner_text("#total") == "3"  # the queue's messages, decided ones too
    answer = page.goto(f"/messages/{site.mail['secret']}")
    assert answer is not None and answer.status == 404
    assert "in your review queues" in page.inner_text("#error")
    answer = page.goto(f"/messages/{site.mail['with_file']}/raw")
    assert answer is not None and answer.status == 404
    # The console errors are the refusals asked for (400, 404); nothing went elsewhere.
    assert [p for p in elsewhere if "400" not in p and "404" not in p] == []

    with site.vault.engine.connect() as conn:
        done = [(e.actor, e.action) for e in audit.entries(conn)
                if e.action.startswith("review-") and e.actor == "rita"]
    assert done == [("rita", "review-decision"), ("rita", "review-tag"),
                    ("rita", "review-decision"), ("rita", "review-decision")]
