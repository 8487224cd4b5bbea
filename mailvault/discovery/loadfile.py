"""The Concordance DAT load file: one row per document (message or attachment).

The format, as review platforms (Concordance, Relativity, Nuix...) read it by default:

- UTF-8 with a byte-order mark (EF BB BF) at the start of the file;
- every value between the quote character ``þ`` (U+00FE), values separated by the field
  separator DC4 (0x14, which Concordance shows as ``¶``), rows ending in CR LF;
- the first row holds the field names (``FIELDS`` below);
- a line break inside a value is written as ``®`` (U+00AE, Concordance's newline code); a
  ``þ`` or a DC4 inside a value (which would end it) is replaced by U+FFFD. manifest.json
  keeps every value exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

BOM = "\ufeff"
QUOTE = "\u00fe"
SEPARATOR = "\x14"
NEWLINE_CODE = "\u00ae"
ROW_END = "\r\n"

# Field name -> the key of the document record (see documents.Document.to_json) it holds.
FIELDS: tuple[tuple[str, str], ...] = (
    ("BEGDOC", "control"), ("ENDDOC", "control"), ("BEGATTACH", "family_first"),
    ("ENDATTACH", "family_last"), ("PARENT_DOCID", "parent"), ("ATTACH_DOCIDS", "children"),
    ("DOCTYPE", "type"), ("VAULT_ID", "id"), ("SHA256", "sha256"), ("SIZE", "size"),
    ("DATE_SENT", "date"), ("FROM", "from"), ("TO", "to"), ("CC", "cc"),
    ("ENVELOPE_TO", "envelope_to"), ("SUBJECT", "subject"), ("FOLDER", "folder"),
    ("SOURCE", "source"), ("CUSTODIAN", "custodian"), ("FILENAME", "filename"),
    ("ATTACHMENTS", "attachments"), ("NATIVE_PATH", "path"), ("TEXT_PATH", "text_path"),
)


def header() -> bytes:
    """The byte-order mark and the row of field names."""
    return (BOM + _row([name for name, _ in FIELDS])).encode("utf-8")


def row(document: Mapping[str, object]) -> bytes:
    """One document's row (values from its record; lists joined by ``; ``)."""
    return _row([_text(document.get(key)) for _, key in FIELDS]).encode("utf-8")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def _row(values: Sequence[str]) -> str:
    return SEPARATOR.join(QUOTE + _clean(v) + QUOTE for v in values) + ROW_END


def _clean(value: str) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\n", NEWLINE_CODE)
    return value.replace(QUOTE, "\ufffd").replace(SEPARATOR, "\ufffd")


def parse(data: bytes) -> Iterator[dict[str, str]]:
    """The rows of a DAT file as field name -> value (line breaks restored); ValueError when
    a row does not follow the format."""
    text = data.decode("utf-8")
    if not text.startswith(BOM):
        raise ValueError("the load file does not start with a UTF-8 byte-order mark.")
    lines = text[len(BOM):].split(ROW_END)
    if lines and lines[-1] == "":
        lines.pop()
    names = _values(lines[0])
    for number, line in enumerate(lines[1:], start=2):
        values = _values(line)
        if len(values) != len(names):
            raise ValueError(f"row {number} has {len(values)} fields, not {len(names)}.")
        yield dict(zip(names, (v.replace(NEWLINE_CODE, "\n") for v in values), strict=True))


def _values(line: str) -> list[str]:
    values = []
    for field in line.split(SEPARATOR):
        if len(field) < 2 or field[0] != QUOTE or field[-1] != QUOTE:
            raise ValueError(f"a field is not quoted with {QUOTE}: {field[:40]!r}.")
        values.append(field[1:-1])
    return values
