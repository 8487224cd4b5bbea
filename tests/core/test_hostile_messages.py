"""No single message may make a command slow or huge: a 30 MB header (one line, and folded
into 10 million lines), 10,000 parts, 50 levels of nesting (forwarded messages and
multiparts), a zip bomb, a million-character subject. Each is parsed in a process of its
own under a 1 GiB address-space limit and the test's time limit (pytest-timeout), and what
was cut is said in the defects; the import of them all succeeds, and `search` shows the
long subject cut with an ellipsis. The inputs are generated here, never committed."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mailvault.message import parse
from mailvault.search.extract import Limits, extractor
from tests.support import Attachment, build_message, invoke, search_json, write_eml_folder

MEMORY_LIMIT = 1024 * 1024 * 1024
_PARSE = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
from mailvault.message import parse
from mailvault.search.extract import Limits, extractor
parsed = parse(sys.stdin.buffer.read(), extractor(Limits()), max_text_chars=2_000_000)
print(json.dumps({{"subject": len(parsed.subject), "body": len(parsed.body),
                   "attachments": len(parsed.attachments), "defects": parsed.defects}}))
"""


def _parsed(raw: bytes) -> dict[str, object]:
    """What parse made of ``raw``, in a process whose memory is bounded."""
    done = subprocess.run([sys.executable, "-c", _PARSE.format(limit=MEMORY_LIMIT)],
                          input=raw, capture_output=True, check=False, timeout=110)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def huge_header(folded: bool) -> bytes:
    value = b"a\n " * 10_000_000 if folded else b"a" * 30_000_000
    return b"From: a@example.org\nSubject: big header\nX-Big: " + value + b"\n\nthe body\n"


def many_parts(count: int = 10_000) -> bytes:
    parts = b"".join(b"--b\nContent-Type: text/plain\n\npart %d\n" % i for i in range(count))
    return (b"From: a@example.org\nSubject: many parts\n"
            b"Content-Type: multipart/mixed; boundary=b\n\n" + parts + b"--b--\n")


def nested(levels: int = 50, multipart: bool = False) -> bytes:
    inner = b"Subject: core\n\ncore text\n"
    for level in range(levels):
        if multipart:
            inner = (b"Content-Type: multipart/mixed; boundary=n%d\n\n--n%d\n" % (level, level)
                     + inner + b"\n--n%d--\n" % level)
        else:
            inner = b"Subject: level %d\nContent-Type: message/rfc822\n\n" % level + inner
    return b"From: a@example.org\n" + (b"Subject: nested\n" if multipart else b"") + inner


def zip_bomb() -> bytes:
    """A .docx whose document.xml inflates from under 1 MB to 500 MB."""
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        # Well-formed, so that the extractor reads on until its member cap stops it.
        archive.writestr("word/document.xml", b'<w:t xmlns:w="urn:w">' + b"a" * 500_000_000
                         + b"</w:t>")
    return (b"From: a@example.org\nSubject: zip bomb\n"
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
            b"Content-Type: application/vnd.openxmlformats-officedocument."
            b"wordprocessingml.document\nContent-Disposition: attachment; filename=bomb.docx\n"
            b"Content-Transfer-Encoding: base64\n\n"
            + base64.encodebytes(packed.getvalue()) + b"\n--b--\n")


def long_subject() -> bytes:
    return b"From: a@example.org\nSubject: long " + b"s" * 1_000_000 + b"\n\nbody\n"


@pytest.mark.parametrize("folded", [False, True], ids=["one-line", "folded"])
def test_a_30_mb_header_is_read_in_part_and_said(folded: bool) -> None:
    parsed = _parsed(huge_header(folded))
    assert parsed["body"] == len("the body\n")
    assert any("only its first" in str(d) for d in parsed["defects"])  # type: ignore[attr-defined]


def test_ten_thousand_parts() -> None:
    parsed = _parsed(many_parts())
    assert parsed["body"] > 10_000 * len("part 1")  # type: ignore[operator]


@pytest.mark.parametrize("multipart", [False, True], ids=["forwarded", "multipart"])
def test_fifty_levels_of_nesting_stop_at_the_limit_and_say_so(multipart: bool) -> None:
    parsed = _parsed(nested(multipart=multipart))
    assert "MIME structure nested too deeply" in parsed["defects"]  # type: ignore[operator]


def test_a_zip_bomb_gives_no_text_and_little_memory_and_says_so() -> None:
    parsed = _parsed(zip_bomb())
    assert parsed["attachments"] == 1 and parsed["body"] == 0
    (defect,) = parsed["defects"]  # type: ignore[misc]
    # The member cap, or on a slow machine the time limit, whichever stops it first.
    assert defect.startswith("attachment bomb.docx: its text was not extracted")


def test_a_million_character_subject_is_cut_in_search(vault_path: Path, tmp_path: Path) -> None:
    assert invoke("init", "--vault", vault_path).exit_code == 0
    folder = tmp_path / "hostile"
    write_eml_folder(folder, [long_subject(), many_parts(), nested(), zip_bomb()])
    imported = invoke("import", str(folder), "--vault", vault_path)
    assert imported.exit_code == 0, imported.stderr
    shown = invoke("search", "larger:950K", "--vault", vault_path)
    assert shown.exit_code == 0
    assert "…" in shown.text and len(shown.text) < 10_000
    assert "longer than 200 characters is cut" in shown.text
    (found,) = search_json(vault_path, "larger:950K")
    # The header section (2 MiB read) holds it whole: only the table cuts it.
    assert len(str(found["subject"])) == len("long ") + 1_000_000
    # What the zip bomb's extraction skipped was recorded when it was archived, and `show`
    # (which parses without extracting) says it.
    (bomb,) = search_json(vault_path, "subject:bomb")
    shown = invoke("show", str(bomb["id"]), "--vault", vault_path, "--json")
    assert any(d.startswith("attachment bomb.docx: its text was not extracted")
               for d in shown.json()["defects"])
    printed = invoke("show", str(bomb["id"]), "--vault", vault_path)
    assert "attachment bomb.docx: its text was not extracted" in printed.text


@pytest.mark.parametrize(("filename", "data", "kind"), [
    ("broken.pdf", b"%PDF-1.4\n1 0 obj <<\n", "a PDF"),
    ("broken.docx", b"PK\x03\x04" + b"\x00" * 60, "an Office document"),
], ids=["pdf", "docx"])
def test_an_attachment_that_cannot_be_read_is_said_to_be_skipped(
        filename: str, data: bytes, kind: str) -> None:
    raw = build_message(subject="broken", attachments=[Attachment(filename, data)])
    parsed = parse(raw, extractor(Limits(timeout_s=10)))
    assert [a.filename for a in parsed.attachments] == [filename]
    (defect,) = [d for d in parsed.defects if d.startswith(f"attachment {filename}")]
    # The reader's error names why (PdfStreamError, BadZipFile, ...).
    assert defect.startswith(f"attachment {filename}: its text was not extracted: it cannot "
                             f"be read as {kind} (")
