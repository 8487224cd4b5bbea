"""The command line around capture: `status` while `serve` runs, `smtp-user`."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from mailvault.capture.status import read_status
from mailvault.capture.users import USERS_FILE
from mailvault.store import audit
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, wait_until

MAILVAULT = [sys.executable, "-m", "mailvault"]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MAILVAULT, *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def test_status_shows_the_running_endpoint(vault: Vault,
                                           serving: Callable[..., Running]) -> None:
    vault.settings.smtp.recipients = ["journal@archive.test"]
    running = serving()
    with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
        client.sendmail("a@example.org", ["journal@archive.test"], build("one"))
        client.sendmail("a@example.org", ["journal@archive.test"], build("two"))
        client.mail("a@example.org")
        assert client.rcpt("stranger@example.org")[0] == 550

    def endpoint() -> dict[str, object]:
        result = run("status", "--vault", str(vault.path), "--json")
        assert result.returncode == 0, result.stderr
        data: dict[str, object] = json.loads(result.stdout)["endpoint"]
        return data

    wait_until(lambda: endpoint()["drained"] == {"archived": 2}, what="the status file")
    data = endpoint()
    assert data["running"] is True
    assert data["accepted"] == {"smtp": 2}
    assert data["refused"] == {"recipient not accepted": 1}
    # serve also runs the web application (on a free loopback port in the tests).
    assert data["endpoints"][0] == f"smtp 127.0.0.1:{running.port()}"
    assert [e.split()[0] for e in data["endpoints"]] == ["smtp", "web"]
    assert all(e.split()[1].startswith("127.0.0.1:") for e in data["endpoints"])
    text = run("status", "--vault", str(vault.path)).stdout
    assert "capture: running" in text and "refused: 1 recipient not accepted" in text
    assert "spool: 0 waiting for the vault" in text
    running.stop()
    assert "capture: not running" in run("status", "--vault", str(vault.path)).stdout


def test_status_says_running_as_soon_as_serve_listens(vault: Vault,
                                                      serving: Callable[..., Running]) -> None:
    """No window after 'listening' in which `status` says serve never ran (a disk that fills
    at that moment would otherwise leave no status file at all)."""
    serving()
    data = read_status(vault.path)
    assert data is not None and data["running"], data


def test_smtp_users_are_kept_hashed_and_audited(vault_path: Path) -> None:
    Vault.create(vault_path).close()
    added = run("smtp-user", "add", "journal", "--vault", str(vault_path),
                "--password-stdin", stdin="correct horse battery\n")
    assert added.returncode == 0, added.stderr
    stored = (vault_path / USERS_FILE).read_text()
    assert "correct horse" not in stored and "$argon2id$" in stored
    assert json.loads(run("smtp-user", "list", "--vault", str(vault_path), "--json").stdout) \
        == ["journal"]
    short = run("smtp-user", "add", "x", "--vault", str(vault_path), "--password-stdin",
                stdin="short\n")
    assert short.returncode == 1 and short.stderr.startswith("mailvault: ")
    assert run("smtp-user", "remove", "journal", "--vault", str(vault_path)).returncode == 0
    missing = run("smtp-user", "remove", "journal", "--vault", str(vault_path))
    assert missing.returncode == 1 and "no SMTP user" in missing.stderr
    with Vault.open(vault_path) as vault, vault.engine.connect() as conn:
        actions = [e.action for e in audit.entries(conn)]
    assert "smtp-user add" in actions and "smtp-user remove" in actions
