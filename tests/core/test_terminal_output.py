"""What the command line prints from mail (issue 10, findings 12 and 15).

Control characters from a message or its SMTP envelope (ESC, NUL, a bidi override) are shown
escaped, never sent raw to the terminal; `--json` keeps them exact. A table cell is cut to a
display width, so a subject of megabytes cannot keep `search` from printing; `--json` and
`show` still give it whole.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from mailvault.vault import Vault
from tests.capture.conftest import message_count, start_serving, wait_until
from tests.support import MAILVAULT, invoke, write_eml_folder

HOSTILE_SUBJECT = "Invoice \x1b[31mURGENT\x00 \u202etxt.exe"
HOSTILE_FROM = "\x1b[2JEvil\x00 Sender <evil@example.org>"
ENVELOPE_FROM = "bounce\x1b[31m\x00@example.org"
ENVELOPE_TO = "journal\x1b]0;owned\x07@example.org"
RAW_CONTROLS = (b"\x1b", b"\x00", b"\x07", "\u202e".encode())


def hostile_message() -> bytes:
    return (f"From: {HOSTILE_FROM}\r\nTo: bob@example.org\r\nSubject: {HOSTILE_SUBJECT}\r\n"
            "Date: Thu, 04 Mar 2021 10:30:00 +0000\r\nMessage-ID: <hostile@example.org>\r\n"
            "\r\nBody with \x1b[5mblinking\x1b[0m text and a lone \rcarriage return.\r\n"
            ).encode()


def smtp_deliver(port: int, envelope_from: str, envelope_to: str, data: bytes) -> None:
    """One SMTP transaction over a raw socket (smtplib will not send control characters)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        replies = sock.makefile("rb")

        def expect(code: bytes) -> None:
            while True:
                reply = replies.readline()
                assert reply[:3] == code, reply
                if reply[3:4] != b"-":
                    return

        expect(b"220")
        for command, code in ((b"EHLO client.example.org", b"250"),
                              (b"MAIL FROM:<" + envelope_from.encode() + b">", b"250"),
                              (b"RCPT TO:<" + envelope_to.encode() + b">", b"250"),
                              (b"DATA", b"354")):
            sock.sendall(command + b"\r\n")
            expect(code)
        sock.sendall(data + b".\r\n")
        expect(b"250")
        sock.sendall(b"QUIT\r\n")
        expect(b"221")


def test_control_characters_from_mail_are_shown_escaped(vault: Vault) -> None:
    running = start_serving(vault)
    try:
        smtp_deliver(running.port(), ENVELOPE_FROM, ENVELOPE_TO, hostile_message())
        wait_until(lambda: message_count(vault) == 1, what="the message to be archived")
    finally:
        running.stop()
    listed = invoke("search", "", "--vault", vault.path)
    shown = invoke("show", "1", "--vault", vault.path)
    for output in (listed.stdout, shown.stdout):
        assert not [c for c in RAW_CONTROLS if c in output], output
        assert b"Invoice \\x1b[31mURGENT\\x00 \\u202etxt.exe" in output
    assert b"\\x1b[2JEvil\\x00 Sender" in shown.stdout
    assert b"bounce\\x1b[31m\\x00@example.org" in shown.stdout
    assert b"journal\\x1b]0;owned\\x07@example.org" in shown.stdout
    assert b"\\x1b[5mblinking\\x1b[0m text and a lone \\x0dcarriage return." in shown.stdout
    # JSON is exact: the same characters, written as JSON escapes.
    for command in ("search", "show"):
        exact = invoke(command, *([""] if command == "search" else ["1"]), "--json",
                       "--vault", vault.path)
        assert not [c for c in RAW_CONTROLS if c in exact.stdout], exact.stdout
        data = exact.json()
        assert (data[0] if command == "search" else data)["subject"] == HOSTILE_SUBJECT


def test_a_subject_of_megabytes_is_cut_in_the_table_and_whole_elsewhere(
        vault_path: Path, tmp_path: Path) -> None:
    words = "lorem ipsum dolor sit amet"
    subject = " ".join([words] * (16 * 1024 * 1024 // (len(words) + 1)))
    # Folded as a mail client folds it: a line of five words each.
    folded = "\r\n ".join([words] * (16 * 1024 * 1024 // (len(words) + 1)))
    raw = (f"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: {folded}\r\n"
           "Date: Thu, 04 Mar 2021 10:30:00 +0000\r\n\r\nHello.\r\n").encode()
    Vault.create(vault_path).close()
    eml = write_eml_folder(tmp_path / "mail", [raw])
    assert invoke("import", *eml, "--vault", vault_path).exit_code == 0
    started = time.monotonic()
    # A generous bound: the table took minutes for a subject this long.
    table = subprocess.run([*MAILVAULT, "search", "", "--vault", str(vault_path)],
                           capture_output=True, timeout=40, check=True)
    assert time.monotonic() - started < 40
    assert len(table.stdout) < 10_000 and "…".encode() in table.stdout
    assert invoke("search", "", "--json", "--vault", vault_path).json()[0]["subject"] \
        == subject
    assert subject.encode() in invoke("show", "1", "--vault", vault_path).stdout
