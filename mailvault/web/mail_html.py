"""Showing a message's HTML to a person without letting the message act.

HTML mail is written by whoever sent it, so it is treated as hostile. Three walls stand
between it and the reader, and each one alone must hold:

1. **The sanitiser** (this module, with nh3): an allow-list of tags and attributes for mail
   (text, tables, fonts, images, links). Scripts, style blocks, frames, plug-ins, forms, SVG,
   MathML, ``<meta>``, ``<base>`` and ``<link>`` go with their content; event handlers and every
   attribute not on the list go. Links keep only ``http``, ``https`` and ``mailto`` URLs and a
   page-local ``#fragment``, and always open a new top-level tab (``target="_blank"
   rel="noopener noreferrer"``). Images keep ``cid:`` sources (rewritten to the app's URL for
   that part of the message), small inline raster ``data:`` images, and remote sources only
   when the reader has allowed them for this message. Inline ``style`` attributes keep only
   listed properties whose values are plain words, numbers, lengths and colours: no function
   but ``rgb()``/``hsl()``, so no ``url()``, ``expression()``, ``image-set()``, ``@import``
   or CSS escapes. The output is a complete UTF-8 document that is safe to open on its own.
2. **The Content-Security-Policy** (:data:`FRAME_CSP`, :func:`frame_csp`), sent with the frame
   document and repeated in its ``<meta>``: no script, no form submission, no fonts, frames or
   connections, images only from the app itself (and inline ``data:``) unless remote images are
   allowed.
3. **The sandbox** (:data:`IFRAME_SANDBOX` on the ``<iframe>``, and the CSP ``sandbox``
   directive for when the frame URL is opened on its own): no scripts, an opaque origin, no
   forms, no top navigation.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import nh3
from selectolax.lexbor import LexborHTMLParser

from mailvault.charsets import decode_bytes
from mailvault.mime_leaves import Leaf

# Links open in a new top-level tab, outside the sandbox and with no opener and no referrer:
# a reader can follow a link (in the frame itself it would open a sandboxed, broken copy of
# the site, and a link that cannot be followed at all is worse than useless), while the page
# it opens has no handle on the archive's window and so cannot navigate it. The sanitiser
# forces target="_blank" on every link, so no link can aim at the frame or the top page, and
# without scripts a popup can only come from a reader's click on a link.
IFRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


def frame_csp(allow_remote_images: bool) -> str:
    """The Content-Security-Policy header value for the response serving a message's HTML.

    The response should also say ``Content-Type: text/html; charset=utf-8``,
    ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``. ``navigate-to``
    is not used: no browser implements it (it left the CSP drafts), so links are kept in
    check by the sanitiser and the sandbox instead.
    """
    return "; ".join([*_policy(allow_remote_images), "frame-ancestors 'self'",
                      f"sandbox {IFRAME_SANDBOX}"])


def _policy(allow_remote_images: bool) -> list[str]:
    """The directives that also work in a ``<meta>`` policy (frame-ancestors and sandbox do
    not)."""
    images = "'self' data:" + (" https: http:" if allow_remote_images else "")
    return [
        "default-src 'none'",
        f"img-src {images}",
        # The sanitiser leaves inline style attributes (filtered) and no <style> element;
        # style-src-elem falls back to default-src 'none'.
        "style-src-attr 'unsafe-inline'",
        "script-src 'none'",
        "object-src 'none'",
        "form-action 'none'",
        "base-uri 'none'",
    ]


FRAME_CSP = frame_csp(False)


@dataclass(frozen=True)
class RenderedHtml:
    """A message's HTML made safe: the document, the remote images it had (kept only when
    allowed, so a page can offer to load them), and how many pieces of active or unsafe
    content (scripts, frames, plug-ins, forms, event handlers, unsafe URLs) were removed."""

    html: str
    remote_images: int
    blocked: int


# Text, tables and images: what mail is made of. Everything else is dropped; its text stays
# unless the tag is listed in _DROPPED_WITH_CONTENT.
_TAGS = frozenset({
    "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big",
    "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup", "dd", "del",
    "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "footer", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main",
    "mark", "nav", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section", "small",
    "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
})

# Tags whose content is code, another document, or a form control's internals: never text
# for the reader.
_DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "template", "noscript", "noembed", "noframes", "title", "iframe",
    "frame", "frameset", "object", "embed", "applet", "svg", "math", "textarea", "select",
    "xmp",
})

# Tags that run code, embed another document, submit or redirect: counted in `blocked`.
# <style>, <link> and <meta> are dropped too, but ordinary newsletters have them, and a
# count that every newsletter raises would tell the reader nothing.
_ACTIVE_TAGS = frozenset({
    "script", "iframe", "frame", "frameset", "object", "embed", "applet", "portal", "form",
    "input", "button", "textarea", "select", "base",
})

_ALIGN = {"align", "valign"}
_BOX = {"width", "height"}
_CELL = _ALIGN | _BOX | {"bgcolor", "colspan", "rowspan", "nowrap", "headers", "scope"}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"dir", "lang", "title", "style", "align"},
    "a": {"href", "name"},
    "img": _BOX | {"src", "alt", "border", "hspace", "vspace"},
    "table": _BOX | {"border", "cellpadding", "cellspacing", "bgcolor", "summary"},
    "tr": _ALIGN | {"bgcolor", "height"},
    "td": _CELL,
    "th": _CELL,
    "thead": _ALIGN,
    "tbody": _ALIGN,
    "tfoot": _ALIGN,
    "col": _ALIGN | {"span", "width"},
    "colgroup": _ALIGN | {"span", "width"},
    "font": {"color", "face", "size"},
    "hr": {"width", "size", "noshade", "color"},
    "ol": {"start", "type", "reversed"},
    "ul": {"type"},
    "li": {"value", "type"},
    "del": {"datetime"},
    "ins": {"datetime"},
    "time": {"datetime"},
}
_SET_ATTRIBUTES = {
    "a": {"target": "_blank"},
    "img": {"referrerpolicy": "no-referrer"},
}
_LINK_REL = "noopener noreferrer"
# nh3's own scheme check runs first; ours (_link, _image_source) decides per attribute.
_SCHEMES = {"http", "https", "mailto", "cid", "data"}

# Inline styles: properties that only lay out, colour and set type, each value made of plain
# words, numbers, lengths, percentages, #colours, quoted font names and rgb()/hsl(). No other
# function (url, expression, image-set, var, attr, ...), no backslash (CSS escapes could spell
# any of them), no colon, no at-sign, no comment.
_STYLE_PROPERTIES = frozenset({
    "background-color", "border", "border-bottom", "border-bottom-color",
    "border-bottom-style", "border-bottom-width", "border-collapse", "border-color",
    "border-left", "border-left-color", "border-left-style", "border-left-width",
    "border-radius", "border-right", "border-right-color", "border-right-style",
    "border-right-width", "border-spacing", "border-style", "border-top", "border-top-color",
    "border-top-style", "border-top-width", "border-width", "caption-side", "clear", "color",
    "direction", "display", "empty-cells", "float", "font", "font-family", "font-size",
    "font-style", "font-variant", "font-weight", "height", "letter-spacing", "line-height",
    "list-style-type", "margin", "margin-bottom", "margin-left", "margin-right", "margin-top",
    "max-height", "max-width", "min-height", "min-width", "padding", "padding-bottom",
    "padding-left", "padding-right", "padding-top", "table-layout", "text-align",
    "text-decoration", "text-indent", "text-transform", "vertical-align", "white-space",
    "width", "word-break", "word-spacing", "word-wrap", "overflow-wrap",
})
_STYLE_COLOUR_FUNCTION = re.compile(r"(?:rgba?|hsla?)\([0-9\s.,%/+-]*\)", re.IGNORECASE)
_STYLE_VALUE = re.compile(r"[A-Za-z0-9\s#%.,'\"!/+-]*")

# Inline images that cannot load anything or run anything: raster formats only (an SVG
# image cannot script inside <img> either, but it is a document format; not worth the risk).
_RASTER_DATA_URL = re.compile(
    r"data:image/(?:png|gif|jpeg|jpg|webp|bmp);base64,[A-Za-z0-9+/=]*", re.IGNORECASE)
_MAX_INLINE_IMAGE_URL = 256 * 1024

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_REMOTE_SCHEMES = ("http", "https")
_LINK_SCHEMES = ("http", "https", "mailto")
_URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data", "poster",
                             "background", "xlink:href", "codebase", "srcset", "ping"})
# A body part that names its charset only in a <meta> (the MIME header has none).
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]{1,40})",
                           re.IGNORECASE)
# Browsers refuse these in <meta> (they could hide markup from a sanitiser that reads ASCII).
_META_CHARSETS_REFUSED = ("utf-7", "utf-16", "utf-32", "unicode", "ucs")


def render(leaves: list[Leaf], *, part_url: Callable[[int], str],
           allow_remote_images: bool) -> RenderedHtml | None:
    """The message's HTML body (its first text/html part that is not an attachment) made
    safe as a complete UTF-8 document, or None when the message has no HTML body.

    ``cid:`` images become ``part_url(leaf.number)`` of the image part with that
    Content-ID; remote image sources (``http``, ``https``, ``//host``) are removed and
    counted unless ``allow_remote_images``.
    """
    body = next((leaf for leaf in leaves
                 if leaf.content_type == "text/html" and leaf.is_body_text), None)
    if body is None:
        return None
    source = _decoded_html(body)
    cleaner = _Cleaner(_images_by_content_id(leaves), part_url, allow_remote_images)
    cleaned = nh3.clean(
        source,
        tags=set(_TAGS),
        clean_content_tags=set(_DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        attribute_filter=cleaner.attribute,
        strip_comments=True,
        link_rel=_LINK_REL,
        set_tag_attribute_values={tag: dict(values) for tag, values in _SET_ATTRIBUTES.items()},
        url_schemes=set(_SCHEMES),
    )
    return RenderedHtml(html=_document(cleaned, allow_remote_images),
                        remote_images=cleaner.remote_images,
                        blocked=_active_content(source))


def text_as_html(text: str) -> str:
    """A plain-text body as a complete UTF-8 document: the text escaped, in a ``<pre>``
    that wraps long lines."""
    escaped = html.escape(_valid_unicode(text), quote=True)
    return _document(f'<pre style="white-space: pre-wrap; overflow-wrap: anywhere">{escaped}'
                     "</pre>", allow_remote_images=False)


def _document(body: str, allow_remote_images: bool) -> str:
    # The policy is repeated in a <meta> so that the document stays fenced in even when it
    # is served or saved without its header; the charset is declared before anything else.
    policy = html.escape("; ".join(_policy(allow_remote_images)), quote=True)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">"
            "<meta name=\"referrer\" content=\"no-referrer\">"
            "<meta http-equiv=\"x-dns-prefetch-control\" content=\"off\">"
            f"</head><body>{body}</body></html>\n")


def _decoded_html(body: Leaf) -> str:
    charset = body.charset
    if charset is None:
        found = _META_CHARSET.search(body.data[:4096])
        declared = found.group(1).decode("ascii").lower() if found else ""
        if declared and not declared.startswith(_META_CHARSETS_REFUSED):
            charset = declared
    return _valid_unicode(decode_bytes(body.data, charset)[0])


def _valid_unicode(text: str) -> str:
    """The text with any lone surrogate replaced (nh3 and the encoder need valid UTF-8)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _images_by_content_id(leaves: list[Leaf]) -> dict[str, Leaf]:
    found: dict[str, Leaf] = {}
    for leaf in leaves:
        if leaf.content_id and leaf.content_type.startswith("image/"):
            found.setdefault(leaf.content_id.lower(), leaf)
    return found


class _Cleaner:
    """nh3's attribute callback for one message: rewrites image sources, checks links and
    styles, counts the remote images it met."""

    def __init__(self, images: dict[str, Leaf], part_url: Callable[[int], str],
                 allow_remote_images: bool) -> None:
        self._images = images
        self._part_url = part_url
        self._allow_remote = allow_remote_images
        self.remote_images = 0

    def attribute(self, tag: str, name: str, value: str) -> str | None:
        """The attribute's safe value, or None to drop it (nh3 calls this for each
        attribute that passed its allow-list, after its own URL scheme check)."""
        if name == "style":
            return _clean_style(value) or None
        if name == "href":
            return _link(value)
        if name == "src":
            return self._image_source(value) if tag == "img" else None
        return value

    def _image_source(self, value: str) -> str | None:
        url = _compact_url(value)
        scheme = _scheme(url)
        if scheme == "cid":
            image = self._images.get(unquote(url[4:]).strip().strip("<>").lower())
            return self._part_url(image.number) if image is not None else None
        if scheme == "data":
            return url if _is_inline_raster(url) else None
        if scheme in _REMOTE_SCHEMES or url.startswith("//"):
            self.remote_images += 1
            if not self._allow_remote:
                return None
            return "https:" + url if url.startswith("//") else url
        # A relative source would be a request to the archive itself, with no meaning here.
        return None


def _link(value: str) -> str | None:
    url = _compact_url(value)
    # Relative links would point into the archive, and a #fragment link would open the
    # frame's own URL in a new tab (every link has target="_blank"); javascript:, vbscript:,
    # data: and every other scheme go too.
    return url if _scheme(url) in _LINK_SCHEMES else None


def _clean_style(value: str) -> str:
    kept = []
    for declaration in value.split(";"):
        name, colon, setting = declaration.partition(":")
        name, setting = name.strip().lower(), setting.strip()
        if not colon or name not in _STYLE_PROPERTIES or not setting:
            continue
        bare = _STYLE_COLOUR_FUNCTION.sub("", setting)
        if not _STYLE_VALUE.fullmatch(bare) or bare.count('"') % 2 or bare.count("'") % 2:
            continue
        kept.append(f"{name}: {setting}")
    return "; ".join(kept)


def _compact_url(value: str) -> str:
    """The URL as a browser reads it: tabs and newlines anywhere removed, and leading and
    trailing spaces and control characters (the WHATWG URL parser does both)."""
    return re.sub(r"[\t\n\r]", "", value).strip("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b"
                                                 "\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16"
                                                 "\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")


def _scheme(url: str) -> str:
    found = _SCHEME.match(url)
    return found.group(1).lower() if found else ""


def _is_inline_raster(url: str) -> bool:
    return len(url) <= _MAX_INLINE_IMAGE_URL and _RASTER_DATA_URL.fullmatch(url) is not None


def _active_content(source: str) -> int:
    """How many active or unsafe pieces the source had: elements that act, event-handler
    attributes, and URLs with a scheme that runs or hides a document. Read with a second
    HTML5 parser (Lexbor) only to count; it decides nothing."""
    count = 0
    root = LexborHTMLParser(source).root
    if root is None:
        return 0
    for node in root.traverse():
        tag = (node.tag or "").lower()
        if tag in _ACTIVE_TAGS or (tag == "meta" and _is_refresh(node.attributes)):
            count += 1
        count += sum(1 for name, value in node.attributes.items()
                     if _is_handler_or_unsafe_url(name.lower(), value or ""))
    return count


def _is_handler_or_unsafe_url(name: str, value: str) -> bool:
    return name.startswith("on") or (name in _URL_ATTRIBUTES and _is_unsafe_url(value))


def _is_refresh(attributes: dict[str, str | None]) -> bool:
    return any(name.lower() == "http-equiv" and (value or "").strip().lower() == "refresh"
               for name, value in attributes.items())


def _is_unsafe_url(value: str) -> bool:
    url = _compact_url(value)
    scheme = _scheme(url)
    return scheme in ("javascript", "vbscript") or (scheme == "data"
                                                     and not _is_inline_raster(url))
