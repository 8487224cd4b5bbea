"""TLS for the listeners (SMTP, SMTPS, the web): TLS 1.2 at least, and a private key that
other users of the machine cannot read.

A key file readable by other users (the "other" bits) is refused: the server will not start
with it, since whoever can read it can impersonate the archive and read its mail in transit.
A key readable by its group is allowed with a warning: Debian's ``ssl-cert`` group (keys
0640 root:ssl-cert) is the usual way to share one certificate between services.
"""

from __future__ import annotations

import logging
import ssl
import stat
from pathlib import Path

from mailvault.errors import ConfigError

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
log = logging.getLogger(__name__)


def check_private_key(path: str, section: str) -> str | None:
    """ConfigError when the key file at ``path`` is readable by other users; the warning
    (one sentence) when its group may read it; None when only its owner may."""
    try:
        mode = stat.S_IMODE(Path(path).stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"{section} the key file {path} cannot be read: "
                          f"{exc.strerror}.") from exc
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        raise ConfigError(f"{section} the key file {path} is readable by every user of this "
                          f"machine (mode {mode:04o}): chmod 600 it (or 640 for a group "
                          "such as ssl-cert).")
    if mode & (stat.S_IRGRP | stat.S_IWGRP):
        return (f"{section} the key file {path} is readable by its group (mode {mode:04o}); "
                "chmod 600 it unless the group is meant to share it.")
    return None


def restrict(context: ssl.SSLContext) -> ssl.SSLContext:
    """The context with TLS 1.2 as its minimum version (1.0 and 1.1 are refused)."""
    context.minimum_version = MINIMUM_VERSION
    return context


def server_context(cert: str, key: str, section: str) -> ssl.SSLContext:
    """A server context for the certificate (chain) and key (``key`` empty: in ``cert``);
    ConfigError when either cannot be loaded or the key is readable by others."""
    warning = check_private_key(key or cert, section)
    if warning is not None:
        log.warning("%s", warning)
    context = restrict(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    try:
        context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{section} tls_cert/tls_key cannot be loaded: {exc}.") from exc
    return context
