"""`mailvault gateway mailbox ...`: the password shown once and never kept or audited, the
states, delete only when suspended and empty, passwd needing the old password."""

from __future__ import annotations

import json
from pathlib import Path

from mailvault.gateway.mailboxes import GatewayMailboxes
from mailvault.store import audit
from mailvault.vault import Vault
from tests.support import run, write_settings


def _create(vault: Vault) -> dict[str, str]:
    done = run("gateway", "mailbox", "create", "--name", "tenant journal", "--json",
               "--vault", vault.path)
    assert done.returncode == 0, done.stderr
    created: dict[str, str] = json.loads(done.stdout)
    return created


def test_create_list_suspend_delete(vault: Vault, tmp_path: Path) -> None:
    write_settings(vault.path, '[gateway]\ndomain = "gw.example.org"\n')
    created = _create(vault)
    assert created["address"] == f"{created['id']}@gw.example.org"
    plain = run("gateway", "mailbox", "create", "--vault", vault.path)
    assert b"lost" in plain.stdout and b"password:" in plain.stdout
    listed = json.loads(run("gateway", "mailbox", "list", "--json", "--vault",
                            vault.path).stdout)
    assert {m["id"] for m in listed} >= {created["id"]}
    shown = json.loads(run("gateway", "mailbox", "show", created["id"], "--json", "--vault",
                           vault.path).stdout)
    assert (shown["state"], shown["count"], shown["name"]) == ("active", 0, "tenant journal")

    refused = run("gateway", "mailbox", "delete", created["id"], "--vault", vault.path)
    assert refused.returncode == 1 and b"suspend it" in refused.stderr
    assert b"Traceback" not in refused.stderr
    assert run("gateway", "mailbox", "suspend", created["id"], "--vault",
               vault.path).returncode == 0
    assert run("gateway", "mailbox", "delete", created["id"], "--vault",
               vault.path).returncode == 0
    missing = run("gateway", "mailbox", "show", created["id"], "--vault", vault.path)
    assert missing.returncode == 1 and b"no gateway mailbox" in missing.stderr

    with vault.engine.connect() as conn:
        entries = [e for e in audit.entries(conn) if e.action.startswith("gateway-mailbox")]
    assert [e.action for e in entries] == ["gateway-mailbox create", "gateway-mailbox create",
                                           "gateway-mailbox suspend", "gateway-mailbox delete"]
    everything = json.dumps([e.to_json() for e in entries])
    assert created["password"] not in everything
    assert created["password"].encode() not in b"".join(
        p.read_bytes() for p in vault.path.rglob("*") if p.is_file())


def test_passwd_needs_the_old_password(vault: Vault, tmp_path: Path) -> None:
    created = _create(vault)
    boxes = GatewayMailboxes.of(vault.path, vault.settings.gateway)
    boxes.deliver(created["id"], b"Subject: kept\r\n\r\nkept\r\n")
    wrong, old, new = tmp_path / "wrong", tmp_path / "old", tmp_path / "new"
    wrong.write_text("not it\n")
    old.write_text(created["password"] + "\n")
    new.write_text("the new mailbox password\n")
    refused = run("gateway", "mailbox", "passwd", created["id"], "--password-file", wrong,
                  "--new-password-file", new, "--vault", vault.path)
    assert refused.returncode == 1 and b"does not unlock" in refused.stderr
    changed = run("gateway", "mailbox", "passwd", created["id"], "--password-file", old,
                  "--new-password-file", new, "--vault", vault.path)
    assert changed.returncode == 0, changed.stderr
    opened = boxes.unlock(created["id"], "the new mailbox password")
    assert [opened.read(m.id) for m in opened.messages()] == [b"Subject: kept\r\n\r\nkept\r\n"]
