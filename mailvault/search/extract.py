"""Text out of attachments: PDF, Office Open XML (DOCX, XLSX, PPTX), OpenDocument, ZIP names.

Runs in the pipeline's worker processes. Every extraction is capped: attachments above a
size are skipped, the text kept is cut at a length, and a per-attachment time limit (a
SIGALRM timer in the worker) stops a hostile file from stalling an import. A file that
cannot be read yields no text, never an exception: the attachment is still archived, and
what was skipped, and why, is said (a defect of the message) like every other skip.
"""

from __future__ import annotations

import io
import logging
import signal
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from xml.etree.ElementTree import Element, XMLPullParser

from mailvault.message import Extracted, Extractor

_OOXML_TEXT = {
    "word/document.xml", "word/footnotes.xml", "word/endnotes.xml", "xl/sharedStrings.xml",
}
_ZIP_MEMBER_CAP = 50 * 1024 * 1024
# How a file that cannot be read is named in what is said about it.
_KIND_NAMES = {"pdf": "a PDF", "ooxml": "an Office document", "odf": "an OpenDocument file",
               "zip": "a ZIP archive"}


@dataclass(frozen=True)
class Limits:
    """The caps on one attachment's extraction."""

    max_bytes: int = 25 * 1024 * 1024
    timeout_s: float = 10.0
    max_chars: int = 2_000_000


class _Timeout(Exception):
    """Raised by the SIGALRM handler when an extraction runs out of time."""


class _MemberTooLarge(Exception):
    """An archive member inflates past the cap (a zip bomb): its text is not read at all."""


def extractor(limits: Limits) -> Extractor:
    """A function (data, filename, content type) -> text and what was skipped, with the
    limits applied."""
    # pypdf logs every oddity of a broken PDF; the attachment is archived either way.
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)

    def extract(data: bytes, filename: str, content_type: str) -> Extracted:
        kind = kind_of(data, filename, content_type)
        if kind is None:
            return Extracted("")
        if len(data) > limits.max_bytes:
            return Extracted("", f"its text was not extracted: {len(data):,} bytes is over the "
                                 f"extraction limit of {limits.max_bytes:,}.")
        try:
            with _time_limit(limits.timeout_s):
                text = _EXTRACTORS[kind](data)
        except _Timeout:
            return Extracted("", f"its text was not extracted: extraction took longer than "
                                 f"{limits.timeout_s:g} s.")
        except _MemberTooLarge as exc:
            return Extracted("", f"its text was not extracted: {exc}")
        except Exception as exc:  # a broken or hostile file: archived, not searchable inside
            return Extracted("", f"its text was not extracted: it cannot be read as "
                                 f"{_KIND_NAMES[kind]} ({type(exc).__name__}).")
        if len(text) > limits.max_chars:
            return Extracted(text[:limits.max_chars],
                             f"its text was cut at {limits.max_chars:,} of {len(text):,} "
                             "characters.")
        return Extracted(text)

    return extract


def kind_of(data: bytes, filename: str, content_type: str) -> str | None:
    """Which extractor fits: by magic bytes first, then by name and declared type."""
    name = filename.lower()
    if data.startswith(b"%PDF") or name.endswith(".pdf") or content_type == "application/pdf":
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        if name.endswith((".docx", ".docm", ".xlsx", ".xlsm", ".pptx", ".pptm")) or \
                "openxmlformats" in content_type:
            return "ooxml"
        if name.endswith((".odt", ".ods", ".odp")) or "opendocument" in content_type:
            return "odf"
        return "zip"
    return None


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception:
            return ""
    return "\n".join((page.extract_text() or "") for page in reader.pages)


def _ooxml(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist()
                 if n in _OOXML_TEXT or (n.startswith(("ppt/slides/slide", "xl/worksheets/sheet"))
                                         and n.endswith(".xml"))]
        return "\n".join(" ".join(_xml_text(archive, n)) for n in sorted(names))


def _odf(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return " ".join(_xml_text(archive, "content.xml"))


def _zip(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return "\n".join(archive.namelist())


def _xml_text(archive: zipfile.ZipFile, name: str) -> Iterator[str]:
    """Text nodes of one XML member, streamed, stopping at the per-member cap."""
    parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
    read = 0
    with archive.open(name) as member:
        while chunk := member.read(65536):
            read += len(chunk)
            if read > _ZIP_MEMBER_CAP:
                raise _MemberTooLarge(f"its member {name} inflates to more than "
                                      f"{_ZIP_MEMBER_CAP // 2**20} MB.")
            parser.feed(chunk)
            for event in parser.read_events():
                element = event[-1]
                if not isinstance(element, Element):
                    continue
                if element.text and element.text.strip():
                    yield element.text
                element.clear()


_EXTRACTORS: dict[str, Callable[[bytes], str]] = {
    "pdf": _pdf, "ooxml": _ooxml, "odf": _odf, "zip": _zip,
}


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (main thread only; elsewhere no limit applies)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _expire(_signum: int, _frame: object) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
