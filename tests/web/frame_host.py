"""Two loopback HTTP servers for showing mail in a real browser.

``FrameHost`` stands in for the web application: a top page that embeds a message's HTML in
an ``<iframe>`` (with whatever sandbox the test gives), the frame document (with whatever
Content-Security-Policy the test gives) and the message's parts for ``cid:`` images. Its top
page sets a SameSite=Strict session cookie, as the application does, and it records which
requests carry it. ``LeakRecorder`` is "the rest of the internet": every connection and
request it sees is recorded, and it answers each with a small PNG, so anything that reaches
it has leaked. Both listen on 127.0.0.1 port 0 in a thread and are ready when their
constructor returns (the socket is bound and listening before ``serve_forever`` starts).
"""

from __future__ import annotations

import html
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.web.hostile_mail import PNG


@dataclass(frozen=True)
class Shown:
    """What the host serves under one key: the frame document, its policy and sandbox (None
    for none), the parts by number (content type, bytes)."""

    frame_html: str
    csp: str | None
    sandbox: str | None
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict)


SESSION_COOKIE = "session=signed-in"


@dataclass(frozen=True)
class Arrival:
    """One request to the host: its path, the Cookie it carried, its Sec-Fetch-Site."""

    path: str
    cookie: str | None
    fetch_site: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[str] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def verify_request(self, request: Any, client_address: Any) -> bool:
        # Every accepted connection counts, even one that never sends a request line (a
        # preconnect, a TLS hello to a plain HTTP port).
        with self.lock:
            self.connections += 1
        return True

    def record(self, path: str) -> None:
        with self.lock:
            self.requests.append(path)

    def forget(self) -> None:
        with self.lock:
            self.connections = 0
            self.requests.clear()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Tests read the records, not a log."""

    def answer(self, status: int, content_type: str, body: bytes,
               headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class LeakRecorder(_Server):
    """A server nothing should reach: records connections and request paths."""

    def __init__(self) -> None:
        super().__init__(_LeakHandler)

    def hits(self) -> list[str]:
        with self.lock:
            return list(self.requests)

    def connection_count(self) -> int:
        with self.lock:
            return self.connections


class _LeakHandler(_Quiet):
    server: LeakRecorder

    def do_GET(self) -> None:
        self.server.record(f"GET {self.path}")
        self.answer(200, "image/png", PNG, {"Access-Control-Allow-Origin": "*"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self.server.record(f"POST {self.path}")
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.answer(200, "image/png", PNG, {"Access-Control-Allow-Origin": "*"})

    def do_OPTIONS(self) -> None:
        self.server.record(f"OPTIONS {self.path}")
        self.answer(204, "text/plain", b"", {"Access-Control-Allow-Origin": "*"})


class FrameHost(_Server):
    """The application's stand-in: /top/KEY, /frame/KEY, /part/KEY/N."""

    def __init__(self) -> None:
        super().__init__(_HostHandler)
        self.shown: dict[str, Shown] = {}
        self.groups: dict[str, list[str]] = {}
        self.arrivals: list[Arrival] = []

    def show(self, key: str, shown: Shown) -> None:
        with self.lock:
            self.shown[key] = shown

    def arrived(self, arrival: Arrival) -> None:
        with self.lock:
            self.arrivals.append(arrival)

    def arrivals_for(self, path: str) -> list[Arrival]:
        """How each request for this path came: its cookie and Sec-Fetch-Site."""
        with self.lock:
            return [arrival for arrival in self.arrivals if arrival.path == path]

    def find(self, key: str) -> Shown | None:
        with self.lock:
            return self.shown.get(key)

    def show_together(self, name: str, keys: list[str]) -> str:
        """A top page with one frame per key (each shown before); its URL."""
        with self.lock:
            self.groups[name] = list(keys)
        return f"{self.base}/together/{name}"

    def group(self, name: str) -> list[str] | None:
        with self.lock:
            return self.groups.get(name)

    def top_url(self, key: str) -> str:
        return f"{self.base}/top/{key}"

    def frame_url(self, key: str) -> str:
        return f"{self.base}/frame/{key}"

    def part_path(self, key: str, number: int) -> str:
        return f"/part/{key}/{number}"


class _HostHandler(_Quiet):
    server: FrameHost

    def do_GET(self) -> None:
        self.server.record(self.path)
        self.server.arrived(Arrival(self.path, self.headers.get("Cookie"),
                                    self.headers.get("Sec-Fetch-Site")))
        parts = self.path.split("/")
        group = self.server.group(parts[2]) if parts[1] == "together" else None
        if group is not None:
            frames = [(key, self.server.find(key)) for key in group]
            page = _top_page([(key, shown) for key, shown in frames if shown is not None])
            self.answer(200, "text/html; charset=utf-8", page.encode())
            return
        shown = self.server.find(parts[2]) if len(parts) > 2 else None
        if shown is None:
            self.answer(404, "text/plain", b"not found")
        elif parts[1] == "top" and len(parts) == 3:
            # The application's session cookie, as issue 11 asks for it.
            self.answer(200, "text/html; charset=utf-8", _top_page([(parts[2], shown)]).encode(),
                        {"Set-Cookie": f"{SESSION_COOKIE}; Path=/; HttpOnly; SameSite=Strict"})
        elif parts[1] == "frame" and len(parts) == 3:
            headers = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
            if shown.csp is not None:
                headers["Content-Security-Policy"] = shown.csp
            self.answer(200, "text/html; charset=utf-8", shown.frame_html.encode(), headers)
        elif parts[1] == "part" and len(parts) == 4 and parts[3].isdigit() \
                and int(parts[3]) in shown.parts:
            content_type, data = shown.parts[int(parts[3])]
            self.answer(200, content_type, data, {"X-Content-Type-Options": "nosniff"})
        else:
            self.answer(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        self.server.record(f"POST {self.path}")
        self.answer(405, "text/plain", b"no")


def _top_page(frames: list[tuple[str, Shown]]) -> str:
    # No policy of its own: the test measures the frames' walls, not the page's. One frame
    # is big (the mouse moves over it); many are small.
    size = "width: 760px; height: 520px" if len(frames) == 1 else "width: 200px; height: 120px"
    iframes = []
    for key, shown in frames:
        sandbox = "" if shown.sandbox is None else f' sandbox="{html.escape(shown.sandbox)}"'
        iframes.append(f'<iframe id="{html.escape(key)}" class="mail"{sandbox} '
                       f'src="/frame/{html.escape(key)}" style="{size}"></iframe>')
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>archive</title></head>"
            "<body style=\"margin: 0\">" + "".join(iframes) + "</body></html>\n")
