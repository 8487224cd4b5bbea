"""``serve`` runs the review policies on its schedule (``[review] every_minutes``), as
``serve:review`` in the audit log."""

from __future__ import annotations

import time

from mailvault.review.service import ACTOR
from mailvault.store import audit
from mailvault.usecases import reviewing
from mailvault.usecases.reviewing import PolicyDraft
from mailvault.vault import Vault
from tests.capture.conftest import start_serving
from tests.review.conftest import OFFICER, RITA

# How long serve's first pass may take to appear (a readiness deadline, not a sleep).
DEADLINE_S = 60.0


def runs_by_serve(vault: Vault) -> list[dict[str, object]]:
    with vault.engine.connect() as conn:
        return [e.detail for e in audit.entries(conn)
                if e.action == "review-run" and e.actor == ACTOR]


def test_serve_runs_the_policies(small: tuple[Vault, dict[str, int]]) -> None:
    vault, mail = small
    reviewing.add_policy(vault, OFFICER, PolicyDraft(
        name="bob", supervised_users=("bob",), lexicon=("guarantee*",), reviewers=("rita",),
        exclude_senders=("@alerts.example",)))
    running = start_serving(vault, {"smtp": ["127.0.0.1:0"]})
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not runs_by_serve(vault) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        running.stop()
    (run,) = runs_by_serve(vault)
    assert run["added"] == 2
    assert {i.message_id for i in reviewing.queue(vault, RITA)} == {mail["out"], mail["in"]}

