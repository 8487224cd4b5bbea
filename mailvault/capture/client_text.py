"""Text a client sent as bytes: kept exact, stored readable, logged bounded.

The SMTP session and the milter decode what a client sends (addresses, the EHLO name, macros)
with ``surrogateescape``: every byte survives, and a byte that is not part of UTF-8 becomes a
lone surrogate. Such a string cannot be encoded as UTF-8, so it must not reach the spool record,
the catalog, the index or a terminal as it is. Where it leaves the serving process, in the spool
record, ``recorded()`` turns each such text into readable text (that byte shown as ``\\xff``) and
keeps the exact bytes beside it in the provenance's ``extra``: ``NAME_bytes`` holds the base64
of the field's bytes, or for a list (``envelope_to``) a JSON list of the base64 of every item,
in order. Text that is UTF-8 is left as it is, with nothing added.
"""

from __future__ import annotations

import base64
import dataclasses
import json

from mailvault.records import Provenance

# Client input in a log line or a status sentence is cut to this many characters.
LOG_LIMIT = 200
# C0 and C1 control characters and DEL, shown as \xNN in logs (no forged lines, no terminal
# escape sequences).
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (it holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def received_bytes(text: str) -> bytes:
    """The bytes a client sent, from their ``surrogateescape`` decoding."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # A surrogate no byte decodes to, so not from a client's bytes: kept as its escape.
        return b"".join(_char_bytes(c) for c in text)


def _char_bytes(char: str) -> bytes:
    try:
        return char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return char.encode("ascii", "backslashreplace")


def readable(text: str) -> str:
    """``text`` as valid Unicode: UTF-8 as it is, any other byte shown as ``\\xNN``."""
    if is_utf8(text):
        return text
    return received_bytes(text).decode("utf-8", "backslashreplace")


def for_log(text: str, limit: int = LOG_LIMIT) -> str:
    """``text`` for a log line or a status sentence: readable, control characters escaped,
    at most ``limit`` characters of it (how many more there were is said)."""
    shown = readable(text[:limit]).translate(_CONTROLS)
    if len(text) > limit:
        shown += f"... ({len(text) - limit} more characters)"
    return shown


def recorded(provenance: Provenance) -> Provenance:
    """``provenance`` with every text that is not UTF-8 made readable, its exact bytes kept in
    ``extra`` (see the module's docstring); the same provenance when all of it is UTF-8."""
    changes: dict[str, object] = {}
    kept: dict[str, str] = {}
    for item in dataclasses.fields(Provenance):
        value = getattr(provenance, item.name)
        if isinstance(value, str) and not is_utf8(value):
            changes[item.name] = readable(value)
            kept[f"{item.name}_bytes"] = _base64(value)
        elif (item.name != "extra" and isinstance(value, tuple)
              and not all(is_utf8(v) for v in value)):
            changes[item.name] = tuple(readable(v) for v in value)
            kept[f"{item.name}_bytes"] = json.dumps([_base64(v) for v in value])
    if not changes and all(is_utf8(n) and is_utf8(v) for n, v in provenance.extra):
        return provenance
    extra: dict[str, str] = {}
    for name, value in provenance.extra:
        extra[readable(name)] = readable(value)
        if not is_utf8(value):
            kept[f"{readable(name)}_bytes"] = _base64(value)
    extra.update(kept)
    return dataclasses.replace(provenance, **changes,  # type: ignore[arg-type]
                               extra=tuple(sorted(extra.items())))


def _base64(text: str) -> str:
    return base64.b64encode(received_bytes(text)).decode("ascii")
