"""Searches for facts known in the corpus find exactly the right messages.

Each expected set is computed from the corpus files with the standard library (headers and
text decoded by ``email.policy.default``, attachments decoded and read with pypdf/zipfile),
not with mailvault's parser, and each must be non-empty, so a search that finds nothing or
everything cannot pass.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import functools
import io
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from tests.core.conftest import CorpusVault
from tests.core.corpus_reading import Expected, decoded_text
from tests.support import search_json

SENDER = "phillip.allen@enron.com"
PERIOD = (datetime(2000, 10, 1, tzinfo=UTC), datetime(2000, 11, 1, tzinfo=UTC))


def words(text: str) -> list[str]:
    """Lower-case words (letters and digits), as a person reads them."""
    return re.findall(r"[^\W_]+", text.lower())


def has_phrase(text: str, phrase: str) -> bool:
    """The phrase's words appear in the text consecutively."""
    haystack, needle = words(text), words(phrase)
    return any(haystack[i:i + len(needle)] == needle for i in range(len(haystack)))


@functools.cache
def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def subject_of(raw: bytes) -> str:
    try:
        return str(parsed(raw).get("subject", ""))
    except (ValueError, LookupError):
        return ""


def sent_by_in_period(raw: bytes) -> bool:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    address = email.utils.parseaddr(str(msg.get("from", "")))[1].lower()
    if address != SENDER or msg.get("date") is None:
        return False
    when = email.utils.parsedate_to_datetime(str(msg["date"]))
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return PERIOD[0] <= when < PERIOD[1]


def attachment_names(raw: bytes) -> list[str]:
    names = []
    for part in parsed(raw).walk():
        try:
            name = part.get_filename()
        except (ValueError, LookupError):
            continue
        if name:
            names.append(name)
    return names


@functools.cache
def text_of(raw: bytes) -> str:
    return decoded_text(raw)


def attachment_text(raw: bytes) -> str:
    """Text of the PDF and DOCX attachments, read with pypdf and zipfile."""
    texts = []
    for part in parsed(raw).walk():
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        if data.startswith(b"%PDF"):
            try:
                texts += [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]
            except PyPdfError:
                continue  # a broken PDF (m0013's is 10 bytes): no text to find
        elif data.startswith(b"PK"):
            try:
                xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
            except (zipfile.BadZipFile, KeyError):
                continue  # not a Word document
            texts.append(re.sub(r"<[^>]+>", " ", xml))
    return "\n".join(texts)


def mentions(word: str) -> Callable[[bytes], bool]:
    """The word is in the decoded subject or text, or (text without a declared charset)
    in the raw UTF-8 bytes."""
    return lambda raw: word in text_of(raw) or word.encode() in raw


FACTS: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    "subject phrase": ('subject:"San Diego Request"',
                       lambda raw: has_phrase(subject_of(raw), "San Diego Request")),
    "sender and date range": (f"from:{SENDER} after:2000-10-01 before:2000-11-01",
                              sent_by_in_period),
    "attachment file name": ("filename:attach02",
                             lambda raw: "attach02" in attachment_names(raw)),
    "RFC 2047 file name": ('filename:"HasenundFrösche.txt"',
                           lambda raw: "HasenundFrösche.txt" in attachment_names(raw)),
    "word inside PDF and DOCX": ("attachment:swiftmailer",
                                 lambda raw: "swiftmailer" in attachment_text(raw).lower()),
    "Japanese, UTF-8 without charset": ("サーバ", mentions("サーバ")),
    "Japanese, ISO-2022-JP": ("すみません", mentions("すみません")),
    "Cyrillic, UTF-8 body": ("будланула", mentions("будланула")),
    "Cyrillic, windows-1251 subject": ("subject:Путін", lambda raw: "Путін" in subject_of(raw)),
}


def expected_hashes(corpus_vault: CorpusVault, fact: Callable[[bytes], bool]) -> set[str]:
    return {m.sha256 for m in corpus_vault.by_sha.values() if _holds(fact, m)}


def _holds(fact: Callable[[bytes], bool], message: Expected) -> bool:
    try:
        return fact(message.raw)
    except (ValueError, LookupError, TypeError, IndexError):
        return False  # the standard library cannot read it: not a fact we can check


@pytest.mark.parametrize("name", list(FACTS))
def test_search_finds_exactly_the_messages(search_corpus_vault: CorpusVault, name: str) -> None:
    """On each search backend (Tantivy, PostgreSQL): the same messages from both."""
    query, fact = FACTS[name]
    expected = expected_hashes(search_corpus_vault, fact)
    assert expected, f"{name}: the fact holds for no message; the test would prove nothing"
    found = {row["sha256"] for row in search_json(search_corpus_vault.path, query)}
    assert found == expected, {
        "missing": sorted(str(search_corpus_vault.by_sha[h].path) for h in expected - found),
        "extra": sorted(str(search_corpus_vault.by_sha[h].path) for h in found - expected)}


def test_the_pdf_word_is_only_inside_attachments(corpus: Path) -> None:
    """'SwiftMailer' is in the PDF and DOCX of issue274 and in their file names, nowhere in
    any message's own bytes as text: the attachment: search can only find it by extraction."""
    raw = (corpus / "eml" / "php-mime-mail-parser" / "issue274.eml").read_bytes()
    text = attachment_text(raw)
    assert text.count("SwiftMailer") >= 2  # the PDF's and the DOCX's
    assert "swiftmailer" not in decoded_text(raw).lower()
