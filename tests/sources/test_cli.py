"""The command line: source add/list/show/test/remove, sync, reconcile, status; passwords never
printed or stored in clear; sources from mailvault.toml."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailvault.cli import app
from mailvault.errors import ConfigError
from mailvault.sources import registry
from mailvault.store import audit
from mailvault.vault import Vault
from tests.sources.dovecot import Dovecot
from tests.sources.mailboxes import Mailbox
from tests.support import catalog_bytes, invoke, run


def test_add_sync_reconcile_status_by_the_real_program(
        tmp_path: Path, messages: list[bytes], mailbox: Callable[[], Mailbox],
        dovecot_server: Dovecot) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:6], "Clients/Société": messages[6:9]})
    vault = tmp_path / "v"
    assert invoke("init", "--vault", vault).exit_code == 0
    secret = tmp_path / "pw"
    secret.write_text(owner.password + "\n")

    added = invoke("source", "add", "imap", "work", "--vault", vault, "--host", "127.0.0.1",
                   "--port", dovecot_server.imaps, "--user", owner.address,
                   "--password-file", secret, "--ca-file", dovecot_server.ca_file,
                   "--interval", "15m")
    assert added.exit_code == 0, added.text
    tested = invoke("source", "test", "work", "--vault", vault, "--json")
    assert tested.exit_code == 0 and tested.json()["ok"] is True, tested.text
    synced = run("sync", "work", "--vault", vault, "--json")
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)[0]["archived"] == 9
    checked = invoke("reconcile", "--vault", vault, "--json")
    assert checked.exit_code == 0, checked.text
    folders = {f["folder"]: f for f in checked.json()[0]["folders"]}
    assert folders["Clients/Société"]["at_source"] == folders["Clients/Société"]["archived"] == 3
    status = invoke("status", "--vault", vault, "--json")
    entry = status.json()["sources"][0]
    assert entry["last_run"]["status"] == "ok" and entry["last_run"]["archived"] == 9
    assert entry["next_run"] and entry["schedule"] == "15m"
    human = invoke("status", "--vault", vault)
    assert "work (imap" in human.text and "next run" in human.text

    everything = b"".join([added.stdout, synced.stdout, synced.stderr, status.stdout,
                           invoke("source", "show", "work", "--vault", vault, "--json").stdout,
                           invoke("source", "list", "--vault", vault).stdout])
    assert owner.password.encode() not in everything
    assert owner.password.encode() not in catalog_bytes(vault)
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        logged = list(audit.entries(conn))
    actions = {e.action for e in logged}
    assert {"source-add", "source-sync", "source-reconcile"} <= actions
    assert owner.password not in json.dumps([e.detail for e in logged])


def test_wrong_password_exits_1_with_one_line(tmp_path: Path, mailbox: Callable[[], Mailbox],
                                              dovecot_server: Dovecot) -> None:
    owner = mailbox()
    vault = tmp_path / "v"
    invoke("init", "--vault", vault)
    secret = tmp_path / "pw"
    secret.write_text("wrong\n")
    invoke("source", "add", "imap", "bad", "--vault", vault, "--host", "127.0.0.1", "--port",
           dovecot_server.imap, "--tls", "starttls", "--user", owner.address,
           "--password-file", secret, "--ca-file", dovecot_server.ca_file)
    tested = run("source", "test", "bad", "--vault", vault)
    assert tested.returncode == 1 and b"the connection failed" in tested.stdout
    assert b"wrong user name or password" in tested.stderr and b"wrong\n" not in tested.stderr
    synced = run("sync", "--vault", vault)
    assert synced.returncode == 1
    assert b"wrong user name or password" in synced.stderr
    assert b"Traceback" not in synced.stderr
    status = invoke("status", "--vault", vault, "--json").json()
    assert "wrong user name or password" in status["sources"][0]["last_run"]["error"]


def test_sources_from_mailvault_toml_and_removal(vault: Vault, messages: list[bytes],
                                                 mailbox: Callable[[], Mailbox],
                                                 dovecot_server: Dovecot, tmp_path: Path) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:2]})
    secret = tmp_path / "pw"
    secret.write_text(owner.password)
    with (vault.path / "mailvault.toml").open("a") as toml:
        toml.write(f'\n[sources.fromtoml]\nkind = "pop3"\nhost = "127.0.0.1"\n'
                   f'port = {dovecot_server.pop3}\ntls = "starttls"\n'
                   f'user = "{owner.address}"\npassword_file = "{secret}"\n'
                   f'ca_file = "{dovecot_server.ca_file}"\ncron = "*/30 * * * *"\n')
    listed = invoke("source", "list", "--vault", vault.path, "--json").json()
    assert [(s["name"], s["origin"]) for s in listed] == [("fromtoml", "config")]
    # The fixture's vault took the index writer when it healed on open (writing the index's
    # marker); the command below, run in this process, needs it.
    vault.index.close()
    synced = invoke("sync", "fromtoml", "--vault", vault.path, "--json")
    assert synced.exit_code == 0 and synced.json()[0]["archived"] == 2
    with pytest.raises(ConfigError, match=r"defined in mailvault\.toml"):
        invoke("source", "remove", "fromtoml", "--vault", vault.path)


def test_password_is_asked_for_and_kept_sealed(vault: Vault) -> None:
    result = CliRunner().invoke(app, ["source", "add", "pop3", "asked", "--vault",
                                      str(vault.path), "--host", "pop.example.org",
                                      "--user", "eve"], input="s3cret-Pass\n")
    assert result.exit_code == 0, result.output
    assert "s3cret-Pass" not in result.output
    spec = registry.get(vault, "asked")
    assert (spec.port, spec.tls) == (995, "implicit")
    assert registry.secret(vault, spec) == "s3cret-Pass"
    invoke("source", "remove", "asked", "--vault", vault.path)
    assert registry.all_sources(vault) == []
