"""Which upstream servers the proxies may reach, and how: the allowlist, the client TLS
context, and the proxy user name ``remote_username%target_server%mailbox_id``.

The allowlist is empty by default, so a proxy reaches nowhere until an administrator names
the providers; that is what keeps it from being an open relay. Upstream certificates are
always verified (a private CA is added with ``ca_file``; there is no opt-out), and TLS 1.2 is
the least accepted.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from fnmatch import fnmatchcase

from mailvault.errors import GatewayError, InputError
from mailvault.sources.tls import client_context

# The separator in a proxy user name. A provider user name may itself hold "%": the name is
# split at its last two.
SEPARATOR = "%"
# A user name longer than this is refused without further parsing (a host name is at most 253
# octets, a mailbox id and a remote user name far less).
MAX_LOGIN = 1024


@dataclass(frozen=True)
class UpstreamTarget:
    """What a proxy user name asks for: log in to ``host`` (``port``, or the protocol's
    default when None) as ``remote_username``, keeping copies in mailbox ``mailbox_id``."""

    remote_username: str
    host: str
    port: int | None
    mailbox_id: str

    def where(self, default_port: int) -> str:
        """``host:port`` for messages (IPv6 literals in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port or default_port}"


def parse_login(name: str) -> UpstreamTarget:
    """Split ``remote_username%target_server[:port]%mailbox_id``; GatewayError when ``name``
    is not of that form (the sentence never quotes the name: it may be mistyped secret)."""
    if len(name) > MAX_LOGIN:
        raise GatewayError("the user name is too long for remote_username%server%mailbox.")
    parts = name.rsplit(SEPARATOR, 2)
    if len(parts) != 3 or not all(parts):
        raise GatewayError("the user name must have the form remote_username%server%mailbox.")
    remote_username, server, mailbox_id = parts
    if any(c.isspace() or not c.isprintable() for c in server + mailbox_id):
        raise GatewayError("the server and mailbox in the user name cannot hold spaces.")
    host, port = _host_port(server)
    return UpstreamTarget(remote_username, host, port, mailbox_id)


def _host_port(server: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` as (lower-case host, port)."""
    bracketed = server.startswith("[")
    if bracketed:
        host, close, rest = server[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise GatewayError("the server in the user name is not a valid [address]:port.")
        port_text = rest[1:] if rest else None
    elif server.count(":") > 1:
        host, port_text = server, None  # a bare IPv6 address
    else:
        host, colon, port_text_or_empty = server.partition(":")
        port_text = port_text_or_empty if colon else None
    if port_text is not None and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise GatewayError("the port in the user name must be a number from 1 to 65535.")
    host = host.rstrip(".").lower()
    if not host:
        raise GatewayError("the server in the user name is empty.")
    if bracketed or ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise GatewayError("the server in the user name is not a valid address.") from exc
    return host, int(port_text) if port_text is not None else None


@dataclass(frozen=True)
class UpstreamPolicy:
    """The ``[gateway]`` rules for upstream connections, shared by both proxies.

    ``allow`` holds host names, addresses and fnmatch patterns (``*.example.com``), each
    optionally with ``:port`` to allow that port only (``[v6]:port`` for IPv6); matching
    ignores case and a trailing dot.
    """

    allow: tuple[str, ...]
    ca_file: str = ""

    def permits(self, host: str, port: int) -> bool:
        """Whether the allowlist lets a proxy connect to ``host`` on ``port``."""
        host = host.rstrip(".").lower()
        for entry in self.allow:
            pattern, entry_port = _host_port(entry.strip())
            if entry_port is not None and entry_port != port:
                continue
            if fnmatchcase(host, pattern):
                return True
        return False

    def check(self, target: UpstreamTarget, default_port: int) -> None:
        """GatewayError unless ``target`` (on its port or ``default_port``) is allowed."""
        if not self.permits(target.host, target.port or default_port):
            raise GatewayError(f"the server {target.where(default_port)} is not in "
                               "[gateway] upstream_allow.")

    def tls_context(self) -> ssl.SSLContext:
        """A client context: system CAs plus ``ca_file``, host name checked, TLS 1.2 or later.

        GatewayError when ``ca_file`` cannot be loaded.
        """
        try:
            return client_context(self.ca_file or None, insecure_skip_verify=False)
        except InputError as exc:
            raise GatewayError(f"[gateway] ca_file: {exc}") from exc
