"""The README's first command: `mailvault serve --init` creates the vault if there is none
and a first administrator (also auditor) whose password it prints once, then serves and
prints the URL; signing in there with that password works. A second run creates nobody."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx

from tests.support import MAILVAULT


def start(vault: Path) -> tuple[subprocess.Popen[str], list[str], str]:
    process = subprocess.Popen(
        [*MAILVAULT, "serve", "--init", "--vault", str(vault), "--smtp", "127.0.0.1:0",
         "--web", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("open "):
            return process, lines, line.split()[1]
    _out, err = process.communicate(timeout=10)
    raise AssertionError(f"serve stopped: {lines} {err}")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)  # waits, and closes the pipes


def test_serve_init_makes_the_vault_and_the_first_administrator(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    process, lines, url = start(vault)
    try:
        assert any(line.startswith("Created a vault") for line in lines)
        said = next(line for line in lines if "Created the administrator" in line)
        password = re.search(r"the password (\S+)", said)
        assert password is not None
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url) as browser:
            form = browser.get("/login")
            token = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert token is not None
            signed_in = browser.post("/login", data={
                "username": "admin", "password": password.group(1),
                "csrf": token.group(1)}, headers={"origin": url.rstrip("/")})
            assert signed_in.status_code == 303
            page = browser.get("/")
            assert page.status_code == 200 and 'id="total">0<' in page.text
    finally:
        stop(process)
    process, lines, _url = start(vault)
    try:
        assert not any("Created" in line for line in lines)
    finally:
        stop(process)
