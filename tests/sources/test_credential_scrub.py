"""A server that echoes the login it refuses never gets the password into the vault or onto
the screen (issue 10, finding 18).

Dovecot does not echo a refused LOGIN, so the servers here are small fakes on 127.0.0.1 port
0 that do: an IMAP server that answers LOGIN and AUTHENTICATE PLAIN with a NO quoting what it
got, and a POP3 server that answers PASS and AUTH PLAIN with an -ERR quoting it. Their replies
carry an escape sequence as well, which `status` and `source list` must show escaped.
"""

from __future__ import annotations

import base64
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.sources.redaction import REDACTED, Redactor
from tests.support import catalog_bytes, invoke

# Quotes and a backslash: imaplib sends it as a quoted string, escaped.
PASSWORD = 'Tr0ub4dor "&" 3\\x'
ADMIN = "admin@example.org"
OWNER = "owner@example.org"
RED = "\x1b[31m"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class EchoingImap(socketserver.StreamRequestHandler):
    """Refuses every login, quoting the command (and a SASL response) in its NO."""

    def handle(self) -> None:
        self.wfile.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake IMAP ready\r\n")
        while line := self.rfile.readline():
            tag, _, command = line.rstrip(b"\r\n").partition(b" ")
            verb = command.split(b" ", 1)[0].upper()
            if verb == b"CAPABILITY":
                self.wfile.write(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            elif verb == b"LOGIN":
                self.wfile.write(tag + b" NO [AUTHENTICATIONFAILED] " + RED.encode()
                                 + b"refused: " + command + b"\r\n")
            elif verb == b"AUTHENTICATE":
                self.wfile.write(b"+ \r\n")
                response = self.rfile.readline().rstrip(b"\r\n")
                self.wfile.write(tag + b" NO " + RED.encode() + b"refused: " + command
                                 + b" " + response + b"\r\n")
            elif verb == b"LOGOUT":
                self.wfile.write(b"* BYE\r\n" + tag + b" OK bye\r\n")
                return
            else:
                self.wfile.write(tag + b" BAD unknown\r\n")


class EchoingPop3(socketserver.StreamRequestHandler):
    """Refuses PASS and AUTH PLAIN, quoting the command in its -ERR."""

    def handle(self) -> None:
        self.wfile.write(b"+OK fake POP3 ready\r\n")
        while line := self.rfile.readline():
            command = line.rstrip(b"\r\n")
            verb = command.split(b" ", 1)[0].upper()
            if verb in (b"PASS", b"AUTH"):
                self.wfile.write(b"-ERR " + RED.encode() + b"refused: " + command + b"\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"+OK bye\r\n")
                return
            else:
                self.wfile.write(b"+OK\r\n")


@pytest.fixture
def echoing_servers() -> Iterator[dict[str, int]]:
    """Both fakes on 127.0.0.1, port 0: {'imap': port, 'pop3': port}."""
    servers = {"imap": _Server(("127.0.0.1", 0), EchoingImap),
               "pop3": _Server(("127.0.0.1", 0), EchoingPop3)}
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    try:
        yield {name: s.server_address[1] for name, s in servers.items()}
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(10)


def secret_forms() -> list[bytes]:
    """The password as sent: its first word in any quoting or escaping, in base64 alone (AUTH
    LOGIN) and inside the AUTH PLAIN tokens of every login here."""
    tokens = [f"\0{ADMIN}\0{PASSWORD}", f"{OWNER}\0{ADMIN}\0{PASSWORD}",
              f"\0{OWNER}\0{PASSWORD}"]
    return [PASSWORD.split()[0].encode(), base64.b64encode(PASSWORD.encode()),
            *(base64.b64encode(t.encode()) for t in tokens)]


def test_a_server_echoing_the_login_never_gets_the_password_recorded_or_shown(
        tmp_path: Path, echoing_servers: dict[str, int]) -> None:
    vault = tmp_path / "vault"
    assert invoke("init", "--vault", vault).exit_code == 0
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    users_file = tmp_path / "users"
    users_file.write_text(OWNER + "\n")
    common = ["--vault", vault, "--host", "127.0.0.1", "--tls", "none",
              "--password-file", password_file]
    for kind, name, extra in (
            ("imap", "imap-login", ["--user", OWNER]),
            ("imap", "imap-plain", ["--user", ADMIN, "--scope", "users", "--users-file",
                                    users_file, "--auth", "authzid"]),
            ("pop3", "pop3-pass", ["--user", OWNER]),
            ("pop3", "pop3-plain", ["--user", ADMIN, "--scope", "users", "--users-file",
                                    users_file, "--auth", "authzid"])):
        added = invoke("source", "add", kind, name, "--port", echoing_servers[kind],
                       *common, *extra)
        assert added.exit_code == 0, added.stderr
    names = ("imap-login", "imap-plain", "pop3-pass", "pop3-plain")
    outputs = []
    for name in names:
        for json_flag in ([], ["--json"]):
            synced = invoke("sync", name, "--vault", vault, *json_flag)
            assert synced.exit_code == 1
            outputs += [synced.stdout, synced.stderr.encode()]
    for command in (["status"], ["source", "list"], *(["source", "show", n] for n in names)):
        for json_flag in ([], ["--json"]):
            shown = invoke(*command, "--vault", vault, *json_flag)
            assert shown.exit_code == 0
            outputs.append(shown.stdout)
    stored = catalog_bytes(vault)
    for form in secret_forms():
        assert form not in stored, form
        for output in outputs:
            assert form not in output, (form, output)
    # The refusals are there, scrubbed, and their escape sequence shown escaped.
    status = invoke("status", "--vault", vault).text
    assert status.count("refused: ") >= 4 and status.count("[password]") >= 4
    assert "\\x1b[31mrefused" in status and RED not in status


@pytest.mark.parametrize("before", [b"", b"a", b"ab", b"user\0"])
def test_the_password_inside_any_base64_token_is_scrubbed(before: bytes) -> None:
    """Whatever else a SASL token holds, the password's share of its base64 is removed: what
    is left around the mark is the other bytes' encoding and at most two characters each side
    that carry bits of the password's first and last bytes."""
    token = base64.b64encode(before + PASSWORD.encode() + b"\0").decode()
    scrubbed = Redactor.of(PASSWORD).scrub(token)
    assert REDACTED in scrubbed
    assert len(scrubbed.replace(REDACTED, "")) <= len(base64.b64encode(before)) + 2 + 4
