"""A message as the pages show it: what ``finding.open_message`` gives, arranged for the
templates (the headers people look for first, the text body, the attachments with what can
be previewed inline)."""

from __future__ import annotations

from dataclasses import dataclass

from mailvault.accounts.principal import Principal
from mailvault.mime_leaves import Leaf, leaves
from mailvault.records import Provenance
from mailvault.usecases import finding
from mailvault.usecases.finding import MessageRow
from mailvault.vault import Vault

SHOWN_FIRST = ("from", "to", "cc", "bcc", "subject", "date", "message-id", "in-reply-to")
# Shown inline as images: raster formats only (an SVG can carry script).
INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_BODY_CHARS = 500_000


@dataclass(frozen=True)
class AttachmentView:
    number: int
    filename: str
    content_type: str
    size: int
    content_id: str

    @property
    def inline_kind(self) -> str:
        """'image' or 'text' when it can be previewed on the page, else ''."""
        if self.content_type in INLINE_IMAGES:
            return "image"
        if self.content_type.startswith("text/") and self.content_type != "text/html":
            return "text"
        return ""


@dataclass(frozen=True)
class MessageView:
    row: MessageRow
    headers: list[tuple[str, str]]
    main_headers: list[tuple[str, str]]
    arrivals: list[Provenance]
    text: str
    text_cut: bool
    has_html: bool
    attachments: list[AttachmentView]
    leaves: list[Leaf]
    defects: list[str]


def message_view(vault: Vault, who: Principal, ref: str) -> MessageView:
    """Open a message for a page (audited as a view by the use case)."""
    return arranged(finding.open_message(vault, who, ref))


def arranged(opened: finding.OpenedMessage) -> MessageView:
    """A message already opened by a use case, arranged for the templates."""
    parts = leaves(opened.raw)
    plain = [p for p in parts if p.is_body_text and p.content_type == "text/plain"]
    text = "\n\n".join(p.text() for p in plain) if plain else opened.parsed.body
    main = [(name, value) for wanted in SHOWN_FIRST for name, value in opened.headers
            if name.lower() == wanted]
    attachments = [AttachmentView(p.number, p.filename, p.content_type, len(p.data),
                                  p.content_id)
                   for p in parts if not p.is_body_text]
    return MessageView(
        row=opened.row, headers=opened.headers, main_headers=main, arrivals=opened.arrivals,
        text=text[:MAX_BODY_CHARS], text_cut=len(text) > MAX_BODY_CHARS,
        has_html=any(p.is_body_text and p.content_type == "text/html" for p in parts),
        attachments=attachments, leaves=parts, defects=opened.defects)
