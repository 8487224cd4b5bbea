"""Responses that carry message bytes: the raw message exactly as received, an attachment
as a download, an image or text part shown inline. None of them can run in the archive's
origin: each is sent with a CSP sandbox and nosniff, and only raster images are inline."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi.responses import Response

from mailvault.fsnames import shown
from mailvault.mime_leaves import Leaf
from mailvault.usecases.finding import MessageRow
from mailvault.web.message_view import INLINE_IMAGES

SANDBOX = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def _disposition(kind: str, filename: str) -> str:
    """Content-Disposition with a plain ASCII name and the exact one (RFC 5987)."""
    filename = shown(filename)

    plain = _UNSAFE.sub("_", filename).strip(" .") or "download"
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


def raw_response(row: MessageRow, data: bytes) -> Response:
    """The message's exact bytes, as a download."""
    return Response(data, media_type="message/rfc822", headers={
        "content-disposition": _disposition("attachment", f"message-{row.id}.eml"),
        "content-security-policy": SANDBOX, "x-sha256": row.sha256})


def attachment_response(part: Leaf, inline: bool = False) -> Response:
    """A part's decoded bytes: inline only for raster images, else a download."""
    name = part.filename or f"part-{part.number}"
    if inline and part.content_type in INLINE_IMAGES:
        return Response(part.data, media_type=part.content_type, headers={
            "content-disposition": _disposition("inline", name),
            "content-security-policy": SANDBOX})
    return Response(part.data, media_type="application/octet-stream", headers={
        "content-disposition": _disposition("attachment", name),
        "content-security-policy": SANDBOX})
