"""Bad input: a clear message, a non-zero exit where something was refused, nothing lost or
half-written (verify passes afterwards and the counts are right)."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.core.corpus_reading import mbox_messages
from tests.support import (
    Attachment,
    build_message,
    count,
    invoke,
    run,
    search_json,
    unavailable,
    write_eml_folder,
    write_maildir,
)

GOOD = [build_message(subject=f"Good message {n}", body=f"Body {n}.\n") for n in range(3)]


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    assert invoke("init", "--vault", path).exit_code == 0
    return path


def archived(vault: Path) -> set[bytes]:
    return {invoke("get", str(r["id"]), "--raw", "--vault", vault).stdout
            for r in search_json(vault, "")}


def assert_intact(vault: Path, expected: Sequence[bytes]) -> None:
    """verify passes, and the vault holds exactly these messages."""
    checked = invoke("verify", "--vault", vault, "--json")
    assert checked.exit_code == 0, checked.text
    assert checked.json()["ok"] and checked.json()["messages_checked"] == len(set(expected))
    assert archived(vault) == set(expected)
    assert count(vault, "") == len(set(expected))


def one_line_error(result: object, *fragments: str) -> None:
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    assert result.returncode == 1, stderr  # type: ignore[attr-defined]
    assert stderr.startswith("mailvault: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr, stderr


def failures(vault: Path) -> list[dict[str, str]]:
    data = json.loads(invoke("status", "--vault", vault, "--json").stdout)
    found: list[dict[str, str]] = data["failures"]
    return found


def test_an_empty_file(vault: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    one_line_error(run("import", empty, "--vault", vault), str(empty), "is empty")
    assert_intact(vault, [])


def test_a_binary_file(vault: Path, tmp_path: Path) -> None:
    blob = tmp_path / "photo.jpg"
    blob.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + random.Random(1).randbytes(5000))
    one_line_error(run("import", blob, "--vault", vault), str(blob), "not a mail file")
    assert_intact(vault, [])


def test_a_folder_with_an_empty_and_a_binary_file(vault: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    write_eml_folder(folder, GOOD)
    (folder / "empty.eml").write_bytes(b"")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00" + bytes(range(256)) * 8)
    result = run("import", folder, "--vault", vault)
    assert result.returncode == 1, "something was refused"
    out = " ".join(result.stdout.decode().split())
    assert "archived 3," in out and "refused 1" in out
    assert f"refused eml {folder / 'empty.eml'}" in out or "empty.eml" in out
    assert "empty: no bytes to archive" in out
    assert f"skipped {folder / 'photo.jpg'}: not a mail file" in out
    assert [f["reason"] for f in failures(vault)] == ["empty: no bytes to archive"]
    assert_intact(vault, GOOD)


def test_a_truncated_mbox(vault: Path, tmp_path: Path, corpus: Path) -> None:
    """An mbox cut in the middle of a message: every whole message, and the cut one as far
    as it goes (those are the bytes there are), byte-exact."""
    data = (corpus / "mbox" / "enron-allen-p" / "inbox.mbox").read_bytes()
    cut = data.index(b"\n", len(data) * 3 // 5) - 7  # inside a line of some message
    truncated = tmp_path / "truncated.mbox"
    truncated.write_bytes(data[:cut])
    expected = [m.raw for m in mbox_messages(truncated)]
    assert len(expected) < len(mbox_messages(corpus / "mbox" / "enron-allen-p" / "inbox.mbox"))
    result = run("import", truncated, "--vault", vault, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["archived"] == len(expected)
    assert expected[-1].endswith(data[cut - 20:cut])
    assert_intact(vault, expected)


def test_a_zero_byte_message_in_a_maildir(vault: Path, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, GOOD)
    (maildir / "new" / "1614853900.99.test").write_bytes(b"")
    result = run("import", maildir, "--vault", vault)
    assert result.returncode == 1
    out = " ".join(result.stdout.decode().split())
    assert "archived 3," in out and "refused 1" in out
    assert "1614853900.99.test: empty: no bytes to archive" in out
    assert len(failures(vault)) == 1
    assert_intact(vault, GOOD)
    # The delivery completes (same file name, now with its bytes): the retry archives it and
    # the recorded failure is resolved.
    delivered = build_message(subject="Delivered late")
    (maildir / "new" / "1614853900.99.test").write_bytes(delivered)
    again = run("import", maildir, "--vault", vault, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["archived"] == 1
    assert failures(vault) == []
    assert_intact(vault, [*GOOD, delivered])


def big_message() -> bytes:
    return build_message(subject="Too big", attachments=[
        Attachment("big.bin", random.Random(3).randbytes(1536 * 1024))])


@pytest.mark.parametrize("how", ["environment", "mailvault.toml"])
def test_a_message_over_the_size_limit(vault: Path, tmp_path: Path, how: str) -> None:
    big = big_message()
    write_eml_folder(tmp_path / "mail", [*GOOD, big])
    env = {}
    if how == "environment":
        env["MAILVAULT_INGEST_MAX_MESSAGE_MB"] = "1"
    else:
        toml = vault / "mailvault.toml"
        toml.write_text(toml.read_text().replace("# max_message_mb = 150", "max_message_mb = 1"))
    result = run("import", tmp_path / "mail", "--vault", vault, env=env)
    assert result.returncode == 1
    out = " ".join(result.stdout.decode().split())
    size_mb = len(big) / 1048576
    assert f"too large: {size_mb:.1f} MB is over the 1 MB limit" in out
    assert "archived 3," in out and "refused 1" in out
    assert_intact(vault, GOOD)
    # The limit raised, the same import archives the refused message and resolves its failure.
    again = run("import", tmp_path / "mail", "--vault", vault, "--json",
                env={"MAILVAULT_INGEST_MAX_MESSAGE_MB": "10"})
    assert again.returncode == 0, again.stdout
    assert failures(vault) == []
    assert_intact(vault, [*GOOD, big])


def without_permission_bypass() -> list[str]:
    """A prefix that runs a command so that file permissions apply to it.

    Tests run as root here, and root reads any file whatever its mode: the command then runs
    as root without the two capabilities that bypass permission checks (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH), so a folder of mode 000 is unreadable to it as to any user.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        unavailable("running as root without setpriv: permissions cannot stop a read")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_a_folder_without_permission(vault: Path, tmp_path: Path) -> None:
    """A locked folder, given directly, inside a plain folder, or nested in a Maildir tree:
    reported (never silently passed over), the rest archived, and archived later once
    readable, which settles the folders' failures."""
    prefix = without_permission_bypass()
    mail = tmp_path / "mail"
    write_eml_folder(mail / "open", GOOD)
    secret = build_message(subject="Behind a locked door")
    write_eml_folder(mail / "locked", [secret])
    nested = build_message(subject="In a locked Maildir folder")
    write_maildir(mail / "box", [build_message(subject="In the Maildir")])
    write_maildir(mail / "box" / "Archive", [nested])
    locked = [mail / "locked", mail / "box" / "Archive"]
    for folder in locked:
        folder.chmod(0)
    try:
        direct = run("import", mail / "locked", "--vault", vault, prefix=prefix)
        one_line_error(direct, str(mail / "locked"), "permission denied")
        walked = run("import", mail, "--vault", vault, prefix=prefix)
        assert walked.returncode == 1
        out = " ".join(walked.stdout.decode().split())
        assert "archived 4," in out and "refused 2" in out, out
        assert out.count("the folder cannot be read: Permission denied") == 2
        assert len(failures(vault)) == 2
        assert_intact(vault, [*GOOD, build_message_in(vault, "In the Maildir")])
    finally:
        for folder in locked:
            folder.chmod(0o755)
    # Once readable, the same import archives what it could not read, and the two folder
    # failures are settled.
    again = run("import", mail, "--vault", vault, "--json")
    assert again.returncode == 0, again.stdout
    assert json.loads(again.stdout)["archived"] == 2
    assert json.loads(again.stdout)["failures_settled"] == 2
    assert failures(vault) == []
    assert count(vault, "") == 6
    assert invoke("verify", "--vault", vault).exit_code == 0


def build_message_in(vault: Path, subject: str) -> bytes:
    """The archived bytes of the one message with this subject."""
    rows = search_json(vault, f'subject:"{subject}"')
    assert len(rows) == 1
    return invoke("get", str(rows[0]["id"]), "--raw", "--vault", vault).stdout


def test_an_unreadable_file_in_a_folder(vault: Path, tmp_path: Path) -> None:
    """One file that cannot be read is one failure, not the end of the import; once it can
    be read, importing again archives it and resolves the failure."""
    prefix = without_permission_bypass()
    mail = tmp_path / "mail"
    write_eml_folder(mail, GOOD)
    locked_message = build_message(subject="Locked file")
    locked = mail / "message-without-suffix"
    locked.write_bytes(locked_message)
    locked.chmod(0)
    try:
        result = run("import", mail, "--vault", vault, prefix=prefix)
        assert result.returncode == 1
        out = " ".join(result.stdout.decode().split())
        assert "archived 3," in out and "refused 1" in out, out
        assert f"{locked} cannot be read: Permission denied." in out
        assert len(failures(vault)) == 1
    finally:
        locked.chmod(0o644)
    again = run("import", mail, "--vault", vault, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["archived"] == 1
    assert failures(vault) == []
    assert_intact(vault, [*GOOD, locked_message])
