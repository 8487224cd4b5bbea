"""Who may connect and which recipients are accepted: the endpoint is never an open relay.

Two rules from ``[smtp]``: ``allow`` (CIDRs; anyone else is told 554 at connect) and
``recipients`` (addresses or domains; anything else 550). With no recipients configured, the
endpoint accepts any recipient but only from a loopback client, so a new vault can be tried at
once and still cannot be used to drop mail from elsewhere.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mailvault.config import SmtpSettings
from mailvault.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AccessPolicy:
    """The connect allowlist and the accepted recipients."""

    allow: tuple[Network, ...]
    addresses: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> AccessPolicy:
        """Read ``[smtp] allow`` and ``[smtp] recipients`` (ConfigError on a bad CIDR)."""
        networks = []
        for text in smtp.allow:
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(f"[smtp] allow: {text!r} is not a CIDR ({exc}).") from None
        addresses = set()
        domains = set()
        for entry in (e.strip().lower() for e in smtp.recipients if e.strip()):
            if entry.startswith("@"):
                domains.add(entry[1:])
            elif "@" in entry:
                addresses.add(entry)
            else:
                domains.add(entry)
        return cls(tuple(networks), frozenset(addresses), frozenset(domains))

    def may_connect(self, client: str) -> bool:
        """Whether a client at this IP address may connect at all."""
        if not self.allow:
            return True
        ip = _ip(client)
        return ip is not None and any(ip in network for network in self.allow)

    def accepts_recipient(self, recipient: str, client: str) -> bool:
        """Whether mail for ``recipient`` from a client at ``client`` is taken."""
        if not self.addresses and not self.domains:
            ip = _ip(client)
            return ip is not None and ip.is_loopback
        address = recipient.strip().lower()
        return address in self.addresses or address.rpartition("@")[2] in self.domains


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
