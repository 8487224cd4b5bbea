"""HOST:PORT listen addresses, as written in settings and on the command line."""

from __future__ import annotations

from mailvault.errors import ConfigError


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:2525' or '[::1]:2525' -> (host, port); port 0 picks a free port."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ConfigError(f"{text!r} is not a HOST:PORT address.")
    return host.strip("[]"), int(port)


def show_listen(host: str, port: int) -> str:
    """(host, port) -> 'host:port', with IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
