"""Names that came from the file system, which on Linux are bytes, not text.

In memory a name is the ``str`` that ``os.fsdecode`` gives (what ``pathlib`` and ``os`` use):
bytes that are not UTF-8 sit in it as lone surrogates (U+DC80..U+DCFF, the
``surrogateescape`` error handler), so ``os.fsencode`` gives the exact bytes back. That text
cannot be written as UTF-8, so it never leaves the process as it is:

- ``shown()`` is the form for people and for catalog columns that are compared or searched:
  each byte that is not UTF-8 written ``\\xNN`` (``latin\\xe9.eml``), like ``ls -b``.
- ``exact_json()`` is the lossless stored form: JSON whose lone surrogates are written as
  ``\\udcNN`` escapes, which ``json.loads`` turns back into the same surrogates.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
# json.dumps builds an encoder on every call given any option; the catalog writes one
# document per arrival, so the plain form has one kept.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def _escape_byte(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # one byte that was not UTF-8
    return f"\\u{code:04x}"  # a lone surrogate of other origin (never a file name byte)


def shown(text: str) -> str:
    """``text`` as valid UTF-8 for a person or a catalog column: undecodable bytes as \\xNN."""
    if text.isascii():
        return text
    return _SURROGATE.sub(_escape_byte, text)


def exact_json(data: Any, **options: Any) -> str:
    """``json.dumps(data, ensure_ascii=False)`` that also holds names with undecodable bytes:
    their surrogates are written as JSON escapes, so the text is valid UTF-8 and
    ``json.loads`` gives the exact names back."""
    text = (json.dumps(data, ensure_ascii=False, **options) if options
            else _ENCODER.encode(data))
    if text.isascii():
        return text
    # A lone surrogate in json.dumps output can only stand inside a string: escaping it
    # there is what ensure_ascii would have done for that one character.
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
