"""The web application under `mailvault serve`: served by uvicorn in serve's own loop on
the configured address, over HTTPS with [web] tls_cert, refused on a non-loopback address
without TLS; and mail archived by the running serve is found at once (the web's searches
reload the index the archiver writes)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import smtplib
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailvault.accounts import tokens, users
from mailvault.config import WebSettings
from mailvault.errors import ConfigError
from mailvault.vault import Vault
from mailvault.web.service import check_listen
from tests.capture.conftest import start_serving
from tests.support import build_message, run

PASSWORD = "correct horse battery staple"


def test_without_tls_only_loopback(tmp_path: Path) -> None:
    plain = WebSettings()
    assert check_listen(plain, ["127.0.0.1:0", "[::1]:0", "localhost:0"])
    for address in ("0.0.0.0:8025", "192.0.2.1:80", "[::]:8025", "example.org:80"):
        with pytest.raises(ConfigError, match="without TLS"):
            check_listen(plain, [address])
    tls = WebSettings(tls_cert="cert.pem", tls_key="key.pem")
    assert check_listen(tls, ["0.0.0.0:8443"]) == [("0.0.0.0", 8443)]
    with pytest.raises(ConfigError, match="together"):
        check_listen(WebSettings(tls_cert="cert.pem"), ["127.0.0.1:0"])
    vault = tmp_path / "vault"
    assert run("init", "--vault", vault).returncode == 0
    refused = run("serve", "--vault", vault, "--smtp", "127.0.0.1:0", "--web", "0.0.0.0:0")
    stderr = refused.stderr.decode() if isinstance(refused.stderr, bytes) else refused.stderr
    assert refused.returncode == 1 and "without TLS" in stderr and "Traceback" not in stderr


def test_serve_runs_the_web_and_finds_new_mail_at_once(vault: Vault) -> None:
    users.add_user(vault, "audrey", ["auditor"], [], PASSWORD, "cli:test")
    token = tokens.create_token(vault, "audrey", None, "cli:test").token
    running = start_serving(vault, {"smtp": ["127.0.0.1:0"], "web": ["127.0.0.1:0"]})
    try:
        host, port = running.endpoints["web"]
        base = f"http://{host}:{port}"
        login = httpx.get(f"{base}/login")
        assert login.status_code == 200 and 'name="username"' in login.text
        assert login.headers["content-security-policy"].startswith("default-src 'self'")
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/v1/count", headers=auth).json() == {"total": 0}
        smtp_host, smtp_port = running.endpoints["smtp"]
        with smtplib.SMTP(smtp_host, smtp_port) as client:
            client.sendmail("alice@example.org", ["bob@example.org"],
                            build_message(subject="fresh off the wire"))
        deadline = time.monotonic() + 30
        found = 0
        while found == 0 and time.monotonic() < deadline:
            found = httpx.get(f"{base}/api/v1/count", params={"q": "subject:fresh"},
                              headers=auth).json()["total"]
            time.sleep(0.05)
        assert found == 1
    finally:
        running.stop()


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_serve_speaks_https_with_a_certificate(vault: Vault, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    vault.settings.web.tls_cert = str(cert)
    vault.settings.web.tls_key = str(key)
    running = start_serving(vault, {"smtp": ["127.0.0.1:0"], "web": ["127.0.0.1:0"]})
    try:
        host, port = running.endpoints["web"]
        context = ssl.create_default_context(cafile=str(cert))
        answer = httpx.get(f"https://{host}:{port}/login", verify=context)
        assert answer.status_code == 200
        assert "max-age" in answer.headers["strict-transport-security"]
        cookie = answer.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie
    finally:
        running.stop()
