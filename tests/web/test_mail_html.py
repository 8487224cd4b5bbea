"""mail_html without a browser: what the sanitiser keeps, rewrites, counts and removes."""

from __future__ import annotations

import base64
import re

import pytest
from selectolax.lexbor import LexborHTMLParser, LexborNode

from mailvault.mime_leaves import leaves
from mailvault.web.mail_html import (
    FRAME_CSP,
    IFRAME_SANDBOX,
    RenderedHtml,
    frame_csp,
    render,
    text_as_html,
)
from tests.support import Attachment, build_message
from tests.web.hostile_mail import (
    PAYLOADS,
    PNG,
    Payload,
    alternative_message,
    html_message,
    related_message,
)

LEAK = "http://127.0.0.1:9"


def _part_url(number: int) -> str:
    return f"/messages/7/parts/{number}"


def _render(raw: bytes, allow_remote_images: bool = False) -> RenderedHtml:
    rendered = render(leaves(raw), part_url=_part_url, allow_remote_images=allow_remote_images)
    assert rendered is not None
    return rendered


def _elements(document: str) -> list[LexborNode]:
    root = LexborHTMLParser(document).body
    assert root is not None
    return [node for node in root.traverse() if node.tag not in ("-text", "body")]


def _body(document: str) -> str:
    return document.split("<body>", 1)[1].rsplit("</body>", 1)[0].strip()


# --- choosing and decoding the body ----------------------------------------------------------

def test_no_html_body_is_none() -> None:
    assert render(leaves(build_message(body="plain only\n")), part_url=_part_url,
                  allow_remote_images=False) is None


def test_an_html_attachment_is_not_the_body() -> None:
    raw = build_message(attachments=[Attachment("page.html", b"<p>attached</p>", "text/html")])
    assert render(leaves(raw), part_url=_part_url, allow_remote_images=False) is None


def test_the_html_alternative_is_chosen() -> None:
    rendered = _render(alternative_message("plain words", "<p>html <b>words</b></p>"))
    assert _body(rendered.html) == "<p>html <b>words</b></p>"


def test_the_document_is_complete_and_declares_utf8_and_its_policy() -> None:
    document = _render(html_message("<p>é</p>", charset="iso-8859-1")).html
    assert document.startswith('<!DOCTYPE html>\n<html><head><meta charset="utf-8">')
    assert '<meta http-equiv="Content-Security-Policy" content="default-src' in document
    assert "<base" not in document
    assert _body(document) == "<p>Ã©</p>"  # the UTF-8 bytes read as Latin-1, as declared


def test_a_meta_charset_names_the_charset_when_mime_does_not() -> None:
    raw = html_message('<meta charset="windows-1252"><p>caf\xe9</p>'.encode("latin-1"),
                       charset=None, encoding="8bit")
    assert _body(_render(raw).html) == "<p>café</p>"


def test_a_meta_charset_of_utf7_is_not_believed() -> None:
    raw = html_message(b'<meta charset="utf-7">+ADw-script+AD4-x+ADw-/script+AD4-',
                       charset=None, encoding="8bit")
    assert "+ADw-script+AD4-" in _render(raw).html


def test_a_mime_charset_of_utf7_is_decoded_before_sanitising() -> None:
    raw = html_message(b"+ADw-b+AD4-bold+ADw-/b+AD4-+ADw-script+AD4-x+ADw-/script+AD4-",
                       charset="utf-7", encoding="8bit")
    assert _body(_render(raw).html) == "<b>bold</b>"


# --- images -------------------------------------------------------------------------------

def test_cid_images_point_at_their_part() -> None:
    raw = related_message('<img src="cid:logo@example.net" alt="logo">'
                          '<img src="CID:Logo%40Example.NET">',
                          {"logo@example.net": ("image/png", PNG)})
    image = next(leaf for leaf in leaves(raw) if leaf.content_id == "logo@example.net")
    rendered = _render(raw)
    sources = [node.attributes.get("src") for node in _elements(rendered.html)
               if node.tag == "img"]
    assert sources == [_part_url(image.number)] * 2
    assert rendered.remote_images == 0


def test_cid_to_a_part_that_is_no_image_or_to_nothing_is_dropped() -> None:
    raw = related_message('<img src="cid:page@example.net"><img src="cid:missing@example.net">',
                          {"page@example.net": ("text/html", b"<script>alert(1)</script>")})
    assert [node.attributes.get("src") for node in _elements(_render(raw).html)] == [None, None]


def test_remote_images_are_removed_and_counted() -> None:
    raw = html_message(f'<img src="{LEAK}/a.png"><img src="HTTPS://example.org/b.png">'
                       '<img src="//example.org/c.png"><img src="cid:nothing">')
    rendered = _render(raw)
    assert rendered.remote_images == 3
    assert all("src" not in node.attributes for node in _elements(rendered.html))


def test_remote_images_stay_when_allowed() -> None:
    raw = html_message(f'<img src="{LEAK}/a.png"><img src="//example.org/c.png">')
    rendered = _render(raw, allow_remote_images=True)
    assert rendered.remote_images == 2
    sources = [node.attributes.get("src") for node in _elements(rendered.html)]
    assert sources == [f"{LEAK}/a.png", "https://example.org/c.png"]
    assert all(node.attributes.get("referrerpolicy") == "no-referrer"
               for node in _elements(rendered.html))


def test_srcset_background_and_relative_sources_never_load() -> None:
    raw = html_message(f'<img srcset="{LEAK}/a 1x"><table background="{LEAK}/b"><tr><td>'
                       '</td></tr></table><img src="/api/v1/messages/1/raw"><img src="x.png">')
    rendered = _render(raw, allow_remote_images=True)
    assert rendered.remote_images == 0
    assert LEAK not in rendered.html and "/api/" not in rendered.html and "x.png" not in \
        rendered.html


def test_small_raster_data_images_stay_and_other_data_images_go() -> None:
    png = "data:image/png;base64," + base64.b64encode(PNG).decode()
    svg = "data:image/svg+xml;base64," + base64.b64encode(b"<svg onload=alert(1)/>").decode()
    big = "data:image/png;base64," + "A" * (300 * 1024)
    rendered = _render(html_message(f'<img src="{png}"><img src="{svg}"><img src="{big}">'))
    assert [node.attributes.get("src") for node in _elements(rendered.html)] == [png, None,
                                                                                  None]


# --- links --------------------------------------------------------------------------------

@pytest.mark.parametrize("href", [
    "javascript:alert(1)", " JavaScript:alert(1)", "java\tscript:alert(1)",
    "vbscript:msgbox(1)", "data:text/html,<script>alert(1)</script>", "/api/v1/messages/1",
    "relative.html", "#top", "file:///etc/passwd", "cid:part@example.net",
])
def test_links_that_are_not_web_or_mail_lose_their_target(href: str) -> None:
    raw = html_message(f'<a href="{href.replace(chr(34), "&quot;")}">x</a>')
    (link,) = _elements(_render(raw).html)
    assert "href" not in link.attributes


@pytest.mark.parametrize("href", ["https://example.org/a?b=c&d=e", "http://example.org/",
                                  "mailto:bob@example.org"])
def test_web_and_mail_links_open_a_new_tab_without_opener_or_referrer(href: str) -> None:
    raw = html_message(f'<a href="{href.replace("&", "&amp;")}" target="_top" ping="x" '
                       'rel="opener">x</a>')
    (link,) = _elements(_render(raw).html)
    assert link.attributes == {"href": href, "target": "_blank", "rel": "noopener noreferrer"}


# --- styles -------------------------------------------------------------------------------

@pytest.mark.parametrize(("style", "kept"), [
    ("color: red; font: 12px/1.5 'Segoe UI', Arial", "color: red; font: 12px/1.5 'Segoe UI', "
     "Arial"),
    ("background-color: rgb(10, 20, 30); padding: 0 4px", "background-color: rgb(10, 20, 30); "
     "padding: 0 4px"),
    ("background: url(http://x/y)", None),
    ("background: #fff url(x)", None),
    ("width: expression(alert(1)); color: blue", "color: blue"),
    ("behavior: url(x.htc); -moz-binding: url(x)", None),
    ("background: \\75rl(x)", None),
    ("background-image: image-set('x' 1x)", None),
    ("color: var(--x)", None),
    ("position: fixed; top: 0; z-index: 9", None),
    ("color: red /* comment */", None),
    ('font-family: "unbalanced', None),
    ("@import url(x)", None),
])
def test_inline_styles_keep_only_plain_layout(style: str, kept: str | None) -> None:
    raw = html_message(f'<p style="{style.replace(chr(34), "&quot;")}">x</p>')
    (paragraph,) = _elements(_render(raw).html)
    assert paragraph.attributes.get("style") == kept


def test_style_blocks_and_stylesheets_go_with_their_content() -> None:
    raw = html_message("<style>p { color: red }</style><link rel=stylesheet href=x><p>x</p>")
    assert _body(_render(raw).html) == "<p>x</p>"


# --- what every hostile message comes out as ---------------------------------------------------

_ALLOWED_URL = re.compile(r"(https?://|mailto:|/messages/7/parts/\d+$|data:image/png;base64,)")


@pytest.mark.parametrize("hostile", PAYLOADS, ids=lambda hostile: hostile.name)
def test_no_hostile_message_keeps_anything_active(hostile: Payload) -> None:
    document = _render(hostile.build(LEAK)).html
    lowered = document.lower()
    for needle in ("<script", "javascript:", "vbscript:", "url(", "expression(", "@import",
                   "<iframe", "<object", "<embed", "<form", "<svg", "<math", "<base", "<link",
                   "<style", "http-equiv=\"refresh"):
        assert needle not in lowered, needle
    # Only the policy, charset, referrer and prefetch metas of the wrapper remain.
    assert lowered.count("<meta") == 4
    for node in _elements(document):
        for name, value in node.attributes.items():
            assert not name.lower().startswith("on"), (node.tag, name)
            if name in ("href", "src"):
                assert value is not None and _ALLOWED_URL.match(value), (node.tag, name, value)
            assert name not in ("srcset", "background", "ping", "action", "formaction",
                                "poster", "target") or (name, value) == ("target", "_blank")
        if node.tag == "a":
            assert node.attributes.get("target") == "_blank"
            assert node.attributes.get("rel") == "noopener noreferrer"
        if node.tag == "img" and "src" in node.attributes:
            assert not (node.attributes["src"] or "").startswith("http")


def test_the_corpus_is_large_and_reaches_the_leak_in_every_message() -> None:
    assert len(PAYLOADS) >= 40
    names = [hostile.name for hostile in PAYLOADS]
    assert len(set(names)) == len(names)
    for hostile in PAYLOADS:
        found = leaves(hostile.build(LEAK))
        assert any(leaf.content_type == "text/html" for leaf in found), hostile.name


def test_blocked_counts_active_content() -> None:
    raw = html_message('<p onclick="x">a</p><script>1</script><iframe src="x"></iframe>'
                       '<a href="javascript:x">j</a><meta http-equiv="refresh" content="0">'
                       "<style>p{}</style>")
    assert _render(raw).blocked == 5
    assert _render(html_message("<style>p{}</style><p>plain</p>")).blocked == 0


# --- plain text, policy and sandbox ----------------------------------------------------------

def test_text_as_html_escapes_everything() -> None:
    document = text_as_html('<script>alert("x")</script> & <b>\n  indented')
    body = _body(document)
    assert body == ('<pre style="white-space: pre-wrap; overflow-wrap: anywhere">'
                    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;\n"
                    "  indented</pre>")
    assert document.startswith('<!DOCTYPE html>\n<html><head><meta charset="utf-8">')


def test_text_as_html_survives_lone_surrogates() -> None:
    assert "\ufffd" not in text_as_html("ok") and "?" in text_as_html("bad \udc80 byte")


def test_the_policy_allows_no_script_form_or_remote_load() -> None:
    directives = dict(item.split(" ", 1) for item in FRAME_CSP.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'none'"
    assert directives["form-action"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["frame-ancestors"] == "'self'"
    assert directives["img-src"] == "'self' data:"
    assert directives["sandbox"] == IFRAME_SANDBOX
    assert dict(item.split(" ", 1) for item in frame_csp(True).split("; "))["img-src"] == \
        "'self' data: https: http:"


def test_the_sandbox_grants_no_script_origin_form_or_top_navigation() -> None:
    flags = set(IFRAME_SANDBOX.split())
    assert not flags & {"allow-scripts", "allow-same-origin", "allow-top-navigation",
                        "allow-top-navigation-by-user-activation", "allow-forms",
                        "allow-modals", "allow-downloads"}
    assert flags == {"allow-popups", "allow-popups-to-escape-sandbox"}


def test_the_corpus_builders_make_the_parts_render_reads() -> None:
    raw = related_message('<img src="cid:a@b">', {"a@b": ("image/png", PNG)})
    assert [(leaf.content_type, leaf.content_id, leaf.disposition) for leaf in leaves(raw)] == [
        ("text/html", "", ""), ("image/png", "a@b", "inline")]
