"""`mailvault user` and `mailvault token` through the real command line: a round trip from
--password-file to a sign-in, tokens printed once, errors as one sentence."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from mailvault.accounts import tokens
from mailvault.accounts.signin import authenticate
from mailvault.cli import app
from mailvault.errors import AuthenticationError
from mailvault.vault import Vault
from tests.support import invoke, run

PASSWORD = "correct horse battery staple"


@pytest.fixture
def cli_vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    Vault.create(path).close()
    return path


def password_file(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "password"
    path.write_text(f"{password}\nthe second line is not part of it\n", encoding="utf-8")
    return path


def test_user_round_trip(cli_vault: Path, tmp_path: Path) -> None:
    added = run("user", "add", "Carol", "--role", "auditor", "--role", "user",
                "--address", "Carol@Example.org", "--address", "c.x@example.org",
                "--password-file", password_file(tmp_path, PASSWORD), "--vault", cli_vault)
    assert added.returncode == 0, added.stderr
    assert added.stdout == b"Added user carol (auditor, user)\n"
    listed = invoke("user", "list", "--json", "--vault", cli_vault).json()
    assert [(u["name"], u["roles"], u["addresses"], u["status"], u["totp"]) for u in listed] \
        == [("carol", ["auditor", "user"], ["carol@example.org", "c.x@example.org"], "active",
             False)]
    with Vault.open(cli_vault) as vault:
        principal = authenticate(vault, "carol", PASSWORD, None, "test")
        assert principal.is_auditor and principal.is_user

    new_password = "a second password, longer"
    changed = invoke("user", "passwd", "carol", "--password-file",
                     password_file(tmp_path, new_password), "--vault", cli_vault)
    assert changed.exit_code == 0
    with Vault.open(cli_vault) as vault:
        with pytest.raises(AuthenticationError):
            authenticate(vault, "carol", PASSWORD, None, "test")
        assert authenticate(vault, "carol", new_password, None, "test").name == "carol"

    changed = invoke("user", "set", "carol", "--role", "reviewer", "--vault", cli_vault)
    assert changed.text == "User carol: reviewer; carol@example.org, c.x@example.org\n"
    assert invoke("user", "disable", "carol", "--vault", cli_vault).exit_code == 0
    assert invoke("user", "list", "--json", "--vault", cli_vault).json()[0]["status"] == \
        "disabled"
    assert invoke("user", "enable", "carol", "--vault", cli_vault).exit_code == 0
    assert invoke("user", "remove", "carol", "--vault", cli_vault).exit_code == 0
    assert invoke("user", "list", "--json", "--vault", cli_vault).json() == []
    assert [u["status"] for u in invoke("user", "list", "--all", "--json",
                                        "--vault", cli_vault).json()] == ["removed"]
    actions = [e["action"] for e in invoke("audit", "log", "--json", "--vault", cli_vault).json()
               if e["actor"] != "mailvault"]
    assert actions[:8] == ["user-add", "login", "user-passwd", "login-failed", "login",
                           "user-update", "user-disable", "user-enable"]


def test_the_password_is_asked_for_twice(cli_vault: Path) -> None:
    asked = CliRunner().invoke(app, ["user", "add", "dave", "--role", "admin",
                                     "--vault", str(cli_vault)],
                               input=f"{PASSWORD}\n{PASSWORD}\n")
    assert asked.exit_code == 0, asked.output
    assert PASSWORD not in asked.output
    with Vault.open(cli_vault) as vault:
        assert authenticate(vault, "dave", PASSWORD, None, "test").is_admin


def test_totp_uri_is_printed_once(cli_vault: Path, tmp_path: Path) -> None:
    invoke("user", "add", "erin", "--role", "reviewer", "--password-file",
           password_file(tmp_path, PASSWORD), "--vault", cli_vault)
    shown = run("user", "totp", "erin", "--vault", cli_vault)
    assert shown.returncode == 0, shown.stderr
    uri = shown.stdout.decode().strip()
    assert b"not shown again" in shown.stderr
    otp = pyotp.parse_uri(uri)
    assert isinstance(otp, pyotp.TOTP)
    with Vault.open(cli_vault) as vault:
        assert authenticate(vault, "erin", PASSWORD, otp.now(), "test").is_reviewer
    listed = invoke("user", "list", "--json", "--vault", cli_vault)
    assert listed.json()[0]["totp"] is True
    assert otp.secret not in listed.text


def test_token_round_trip(cli_vault: Path, tmp_path: Path) -> None:
    invoke("user", "add", "frank", "--role", "auditor", "--password-file",
           password_file(tmp_path, PASSWORD), "--vault", cli_vault)
    made = run("token", "create", "--user", "frank", "--expires", "7", "--vault", cli_vault)
    assert made.returncode == 0, made.stderr
    token = made.stdout.decode().strip()
    assert len(made.stdout.splitlines()) == 1 and token.startswith("mvt_")
    assert b"not shown again" in made.stderr
    with Vault.open(cli_vault) as vault:
        assert tokens.principal_for_token(vault, token).name == "frank"
    listed = invoke("token", "list", "--json", "--vault", cli_vault)
    assert [(t["id"], t["user"], t["status"]) for t in listed.json()] == [(1, "frank", "active")]
    assert token not in listed.text and token not in invoke("token", "list",
                                                            "--vault", cli_vault).text
    assert invoke("token", "revoke", "1", "--vault", cli_vault).text == "Revoked token 1\n"
    assert invoke("token", "list", "--json", "--vault", cli_vault).json()[0]["status"] == \
        "revoked"
    with Vault.open(cli_vault) as vault, pytest.raises(AuthenticationError):
        tokens.principal_for_token(vault, token)


@pytest.mark.parametrize(("args", "sentence"), [
    (("user", "add", "gina", "--role", "boss"),
     "there is no role 'boss' (roles: admin, auditor, reviewer, user)."),
    (("user", "add", "gina", "--role", "user"),
     "a user with the role 'user' needs at least one --address: their own mail is found by it."),
    (("user", "remove", "nobody"),
     "there is no user named 'nobody' (see 'mailvault user list')."),
    (("token", "create", "--user", "nobody"),
     "there is no user named 'nobody' (see 'mailvault user list')."),
    (("token", "revoke", "42"), "there is no token 42 (see 'mailvault token list')."),
])
def test_errors_are_one_sentence(cli_vault: Path, tmp_path: Path, args: tuple[str, ...],
                                 sentence: str) -> None:
    extra = ("--password-file", str(password_file(tmp_path, PASSWORD))) \
        if args[:2] == ("user", "add") else ()
    result = run(*args, *extra, "--vault", cli_vault)
    assert result.returncode == 1
    assert result.stderr.decode() == f"mailvault: {sentence}\n"
