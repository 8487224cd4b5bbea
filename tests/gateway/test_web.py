"""Administrators see the gateway mailboxes and their states on /admin/gateway and at
/api/v1/gateway/mailboxes; others do not; suspending from the page is audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.store import audit
from tests.web.site import Site, site_fixture


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from site_fixture(tmp_path)


def test_admins_see_the_mailboxes_and_their_states(site: Site) -> None:
    site.vault.settings.gateway.domain = "gw.example.org"
    boxes = GatewayMailboxes.of(site.vault.path, site.vault.settings.gateway)
    info, password = boxes.create("tenant journal")
    boxes.deliver(info.id, b"Subject: secret plans\r\n\r\nhidden\r\n")

    adam = site.browser()
    assert adam.sign_in("adam").status_code == 303
    assert "/admin/gateway" in adam.get("/admin").text
    shown = adam.get("/admin/gateway")
    assert shown.status_code == 200
    assert f'data-mailbox="{info.id}" data-state="active"' in shown.text
    assert info.address in shown.text and "tenant journal" in shown.text
    assert "secret plans" not in shown.text and password not in shown.text

    suspended = adam.form(f"/admin/gateway/{info.id}/suspend")
    assert suspended.status_code == 303
    assert f'data-mailbox="{info.id}" data-state="suspended"' in adam.get(
        suspended.headers["location"]).text
    with site.vault.engine.connect() as conn:
        assert [(e.actor, e.action) for e in audit.entries(conn)
                if e.action.startswith("gateway")] == [("adam", "gateway-mailbox suspend")]

    api = site.browser()
    listed = api.get("/api/v1/gateway/mailboxes",
                     headers={"authorization": f"Bearer {site.token('adam')}"})
    assert listed.status_code == 200
    [row] = listed.json()["mailboxes"]
    assert (row["id"], row["state"], row["count"]) == (info.id, "suspended", 1)

    bob = site.browser()
    assert bob.sign_in("bob").status_code == 303
    assert bob.get("/admin/gateway").status_code == 403
    refused = api.get("/api/v1/gateway/mailboxes",
                      headers={"authorization": f"Bearer {site.token('bob')}"})
    assert refused.status_code == 403
