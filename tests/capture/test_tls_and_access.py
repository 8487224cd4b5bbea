"""TLS and access on real sockets: every listener (SMTP with STARTTLS, SMTPS, the web over
HTTPS) refuses a client that speaks TLS 1.1 at most and serves one that speaks 1.2; a key
file other users can read stops serve with one sentence (a group-readable one is a warning);
repeated SMTP AUTH failures from one address are answered 454 until the window passes."""

from __future__ import annotations

import base64
import contextlib
import smtplib
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mailvault.capture.tls import check_private_key, server_context
from mailvault.capture.users import add_user
from mailvault.errors import ConfigError
from mailvault.vault import Vault
from tests.capture.conftest import Certificate, Running


def old_client() -> ssl.SSLContext:
    """A client that offers TLS 1.0 and 1.1 only (security level 0, so OpenSSL lets it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def new_client() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture(scope="module")
def old_tls_works(certificate: Certificate) -> None:
    """The control: the old client does complete a handshake with a server that allows
    TLS 1.1, so its failure against ours is the floor's doing, not this OpenSSL's."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1_1
    server.load_cert_chain(certificate.cert, certificate.key)
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: list[str] = []

    def accept() -> None:
        conn, _ = listener.accept()
        with conn, contextlib.suppress(OSError), \
                server.wrap_socket(conn, server_side=True) as tls:
            outcome.append(str(tls.version()))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=10) as raw, \
                old_client().wrap_socket(raw) as tls:
            version = tls.version()
    except (ssl.SSLError, OSError) as exc:
        pytest.skip(f"this OpenSSL cannot speak TLS 1.1 at all ({exc}): nothing to refuse")
    finally:
        thread.join(10)
        listener.close()
    assert version == "TLSv1.1"


def _handshake(port: int, context: ssl.SSLContext, starttls: bool = False) -> str:
    """The TLS version agreed with 127.0.0.1:port (after STARTTLS when asked)."""
    if starttls:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            client.starttls(context=context)
            return str(client.sock.version())  # type: ignore[union-attr]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        return str(tls.version())


def test_every_listener_refuses_tls_1_1(vault: Vault, serving: Callable[..., Running],
                                        certificate: Certificate,
                                        old_tls_works: None) -> None:
    for section in (vault.settings.smtp, vault.settings.web):
        section.tls_cert, section.tls_key = str(certificate.cert), str(certificate.key)
    vault.settings.smtp.tls_listen = ["127.0.0.1:0"]
    running = serving({"smtp": ["127.0.0.1:0"], "web": ["127.0.0.1:0"]})
    listeners = [(running.port("smtp"), True), (running.port("smtps"), False),
                 (running.port("web"), False)]
    for port, starttls in listeners:
        with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, OSError)):
            _handshake(port, old_client(), starttls)
        assert _handshake(port, new_client(), starttls) in ("TLSv1.2", "TLSv1.3")


def test_outgoing_connections_ask_for_tls_1_2() -> None:
    from mailvault.sources.tls import client_context

    assert client_context(None, False).minimum_version == ssl.TLSVersion.TLSv1_2
    assert client_context(None, True).minimum_version == ssl.TLSVersion.TLSv1_2


@pytest.mark.parametrize(("mode", "outcome"), [(0o600, None), (0o400, None),
                                               (0o640, "warning"), (0o644, "refused"),
                                               (0o604, "refused")])
def test_a_key_file_readable_by_others_is_refused(certificate: Certificate, tmp_path: Path,
                                                  mode: int, outcome: str | None) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(certificate.key.read_bytes())
    key.chmod(mode)
    if outcome == "refused":
        with pytest.raises(ConfigError, match="readable by every user"):
            server_context(str(certificate.cert), str(key), "[smtp]")
        return
    warning = check_private_key(str(key), "[smtp]")
    assert (warning is not None) == (outcome == "warning")
    server_context(str(certificate.cert), str(key), "[smtp]")


def test_serve_will_not_start_with_a_world_readable_key(vault: Vault,
                                                        certificate: Certificate,
                                                        tmp_path: Path) -> None:
    from tests.capture.conftest import start_serving

    key = tmp_path / "open-key.pem"
    key.write_bytes(certificate.key.read_bytes())
    key.chmod(0o644)
    vault.settings.web.tls_cert, vault.settings.web.tls_key = str(certificate.cert), str(key)
    with pytest.raises(ConfigError, match="readable by every user"):
        start_serving(vault, {"smtp": ["127.0.0.1:0"], "web": ["127.0.0.1:0"]})


@pytest.fixture
def auth_server(vault: Vault, serving: Callable[..., Running],
                certificate: Certificate) -> Iterator[int]:
    vault.settings.smtp.tls_cert = str(certificate.cert)
    vault.settings.smtp.tls_key = str(certificate.key)
    vault.settings.smtp.tls_listen = ["127.0.0.1:0"]
    vault.settings.smtp.auth = "optional"
    vault.settings.smtp.auth_attempts = 3
    add_user(vault.path, "journal", "correct horse battery")
    yield serving().port("smtps")


def _login(port: int, password: str) -> int:
    """One AUTH PLAIN attempt (smtplib's login() would try each mechanism in turn)."""
    token = base64.b64encode(f"\0journal\0{password}".encode()).decode()
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=new_client()) as client:
        client.ehlo()
        code, _ = client.docmd("AUTH", f"PLAIN {token}")
        return code


def test_smtp_auth_failures_are_throttled_per_client(auth_server: int) -> None:
    assert [_login(auth_server, "wrong") for _ in range(3)] == [535, 535, 535]
    # The allowance is used up: even the right password waits for the window.
    assert _login(auth_server, "correct horse battery") == 454
    assert _login(auth_server, "wrong") == 454
