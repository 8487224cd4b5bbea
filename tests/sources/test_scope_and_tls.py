"""Scopes (a domain through Dovecot's master user, a date range), and TLS verification."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from mailvault.sources import overview
from mailvault.sources.definitions import SourceSpec
from mailvault.vault import Vault
from tests.sources.dovecot import DOMAIN, MASTER_PASSWORD, MASTER_USER, Dovecot
from tests.sources.mailboxes import Mailbox, date_of, sha256
from tests.sources.support import message_hashes, per_folder, run_sync


def test_domain_through_the_master_user(vault: Vault, messages: list[bytes],
                                        mailbox: Callable[[], Mailbox],
                                        add_source: Callable[..., SourceSpec],
                                        tmp_path: Path) -> None:
    carol, dave = mailbox(), mailbox()
    carol.fill({"INBOX": messages[200:206]})
    dave.fill({"INBOX": messages[206:209], "Clients/Ärzte": messages[209:211]})
    users = tmp_path / "users.txt"
    # Bare names are completed with the domain; other domains are not in scope.
    users.write_text(f"{carol.address.split('@')[0]}\n{dave.address}\nmallory@elsewhere.test\n")
    spec = add_source(MASTER_USER, MASTER_PASSWORD, scope="domain", domain=DOMAIN,
                      users_file=str(users), auth="master")

    report = run_sync(vault, spec)

    assert report.status == "ok", report.errors
    assert per_folder(vault, spec.name) == {(carol.address, "INBOX"): 6,
                                            (dave.address, "INBOX"): 3,
                                            (dave.address, "Clients/Ärzte"): 2}


def test_date_range_is_searched_on_the_server(vault: Vault, messages: list[bytes],
                                              mailbox: Callable[[], Mailbox],
                                              add_source: Callable[..., SourceSpec]) -> None:
    dated = sorted((day.date(), raw) for raw in messages[:150]
                   if (day := date_of(raw)) is not None)
    owner = mailbox()
    owner.fill({"INBOX": [raw for _day, raw in dated]})
    since = dated[len(dated) // 2][0]
    before = date(since.year + 1, since.month, 1)
    spec = add_source(owner.address, owner.password, since=since.isoformat(),
                      before=before.isoformat())

    run_sync(vault, spec)

    # SEARCH SINCE/BEFORE compare INTERNALDATE, which APPEND set from the Date header in
    # the server's time zone: compare days with a day of slack at both ends.
    def near_edge(day: date) -> bool:
        return abs((day - since).days) <= 1 or abs((day - before).days) <= 1

    wanted = {sha256(raw) for day, raw in dated if since <= day < before and not near_edge(day)}
    edges = {sha256(raw) for day, raw in dated if near_edge(day)}
    found = message_hashes(vault)
    assert wanted and len(found) < len(dated)
    assert found - edges == wanted


def test_self_signed_certificate_refused_then_accepted_with_ca_file(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:3]})
    strict = add_source(owner.address, owner.password, tls="implicit",
                        port=dovecot_server.imaps, ca_file=None)
    refused = run_sync(vault, strict)
    assert refused.status == "failed"
    assert "TLS failure" in refused.errors[owner.address]
    assert "cannot be verified" in refused.errors[owner.address]

    trusting = add_source(owner.address, owner.password, tls="implicit",
                          port=dovecot_server.imaps)
    assert run_sync(vault, trusting).totals()["archived"] == 3
    # STARTTLS on the plain port is verified the same way.
    starttls = add_source(owner.address, owner.password, tls="starttls", ca_file=None)
    assert "TLS failure" in run_sync(vault, starttls).errors[owner.address]


def test_insecure_skip_verify_accepts_and_is_flagged(vault: Vault,
                                                     mailbox: Callable[[], Mailbox],
                                                     add_source: Callable[..., SourceSpec],
                                                     dovecot_server: Dovecot) -> None:
    owner = mailbox()
    spec = add_source(owner.address, owner.password, tls="implicit", port=dovecot_server.imaps,
                      ca_file=None, insecure_skip_verify=True)
    assert run_sync(vault, spec).status == "ok"
    entry = next(e for e in overview.describe(vault) if e["name"] == spec.name)
    assert overview.INSECURE_WARNING in entry["warnings"]
