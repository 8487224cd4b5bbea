"""Full backfill from a real Dovecot: several users, nested and non-ASCII folders, SPECIAL-USE
exclusions, byte-exact copies, provenance, and a mailbox left exactly as it was."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import imapclient

from mailvault.sources.definitions import SourceSpec
from mailvault.store import catalog
from mailvault.vault import Vault
from tests.sources.dovecot import MASTER_PASSWORD, MASTER_USER
from tests.sources.mailboxes import Mailbox, sha256
from tests.sources.support import arrivals, message_hashes, per_folder, run_sync


def test_backfill_of_several_users_through_sasl_authzid(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec], tmp_path: Path) -> None:
    alice, bob = mailbox(), mailbox()
    alice.fill({"INBOX": messages[0:20], "Projects/2001/Q1": messages[20:30],
                "Réunions": messages[30:35], "Archive/Ünïcode &-Tilde~": messages[35:40],
                "Junk": messages[40:43], "Trash": messages[43:45]})
    # Bob holds five of Alice's messages too: stored once, with two arrivals each.
    bob.fill({"INBOX": messages[50:65] + messages[0:5], "Sent": messages[65:70]})
    users = tmp_path / "users.txt"
    users.write_text(f"# the accounts to archive\n{alice.address}\n{bob.address}\n")
    spec = add_source(MASTER_USER, MASTER_PASSWORD, scope="users", users_file=str(users),
                      auth="authzid")

    report = run_sync(vault, spec)

    assert report.status == "ok", report.errors
    assert per_folder(vault, spec.name) == {
        (alice.address, "INBOX"): 20, (alice.address, "Projects/2001/Q1"): 10,
        (alice.address, "Réunions"): 5, (alice.address, "Archive/Ünïcode &-Tilde~"): 5,
        (bob.address, "INBOX"): 20, (bob.address, "Sent"): 5}
    expected = {sha256(m) for m in messages[0:40] + messages[50:70]}
    assert message_hashes(vault) == expected
    assert report.totals()["archived"] == 60 and report.totals()["duplicates"] == 5
    skipped = {(a, f): r for a, f, r in report.skipped}
    assert "Junk" in skipped[(alice.address, "Junk")]
    assert "Trash" in skipped[(alice.address, "Trash")]
    assert "not selectable" in skipped[(alice.address, "Projects")]


def test_provenance_and_read_only(vault: Vault, messages: list[bytes],
                                  mailbox: Callable[[], Mailbox],
                                  add_source: Callable[..., SourceSpec]) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[100:104]})
    client = owner.client()
    client.select_folder("INBOX")
    client.add_flags([2], [b"\\Flagged"])
    uidvalidity = client.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    before = _flags(client)
    client.logout()
    spec = add_source(owner.address, owner.password)

    run_sync(vault, spec)

    found = {a["uid"]: a for a in arrivals(vault, spec.name)}
    assert sorted(found) == [1, 2, 3, 4]
    second = found[2]
    assert second["kind"] == "imap" and second["account"] == owner.address
    assert second["folder"] == "INBOX" and second["uidvalidity"] == uidvalidity
    assert "\\Flagged" in second["flags"] and second["internal_date"]
    assert second["item"].endswith(f";UIDVALIDITY={uidvalidity}/;UID=2")
    client = owner.client()
    client.select_folder("INBOX", readonly=True)
    assert _flags(client) == before  # \Seen was never set: EXAMINE and BODY.PEEK
    client.logout()
    # Byte-exact: what the vault returns is what was appended.
    with vault.engine.connect() as conn:
        rows = list(catalog.iter_messages(conn))
    assert {sha256(vault.read_raw(r)) for r in rows} == {sha256(m) for m in messages[100:104]}


def _flags(client: imapclient.IMAPClient) -> dict[int, set[bytes]]:
    """Stored flags by UID (\\Recent is per session, not stored)."""
    answer = client.fetch([1, 2, 3, 4], ["FLAGS"])
    return {uid: set(data[b"FLAGS"]) - {b"\\Recent"} for uid, data in answer.items()}


def test_folder_patterns_and_special_use_on_request(vault: Vault, messages: list[bytes],
                                                    mailbox: Callable[[], Mailbox],
                                                    add_source: Callable[..., SourceSpec]
                                                    ) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:2], "Lists/linux": messages[2:4],
                "Lists/python": messages[4:5], "Private": messages[5:6],
                "Junk": messages[6:7], "Trash": messages[7:8]})
    spec = add_source(owner.address, owner.password, include=["INBOX", "Lists/*", "Junk"],
                      exclude=["Lists/python"], special_use=["junk"])

    report = run_sync(vault, spec)

    assert per_folder(vault, spec.name) == {
        (owner.address, "INBOX"): 2, (owner.address, "Lists/linux"): 2,
        (owner.address, "Junk"): 1}
    reasons = {f: r for _a, f, r in report.skipped}
    assert "--exclude" in reasons["Lists/python"] and "--include" in reasons["Private"]
    assert "Trash" in reasons["Trash"]
