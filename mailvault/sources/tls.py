"""TLS for sources: certificates verified by default, an optional CA file, and an explicit
opt-out that status shows as a warning."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from mailvault.capture.tls import MINIMUM_VERSION
from mailvault.errors import InputError, SourceError


def client_context(ca_file: str | None, insecure_skip_verify: bool) -> ssl.SSLContext:
    """A client context: system CAs (plus ``ca_file``), hostname checked, TLS 1.2 at least."""
    context = ssl.create_default_context()
    context.minimum_version = MINIMUM_VERSION
    if ca_file:
        path = Path(ca_file).expanduser()
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise InputError(f"the CA file {path} cannot be loaded: {exc}.") from exc
    if insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe_failure(exc: ssl.SSLError, where: str) -> str:
    """One sentence for a TLS handshake failure."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS failure: the certificate of {where} cannot be verified "
                f"({exc.verify_message}); give --ca-file with the issuing CA")
    return f"TLS failure with {where}: {exc.reason or exc}"


def network_error(exc: OSError, where: str, action: str) -> SourceError:
    """A socket, TLS or timeout failure during ``action`` as one sentence, retryable unless
    it is about TLS (a certificate does not fix itself by waiting)."""
    if isinstance(exc, ssl.SSLError):
        return SourceError(describe_failure(exc, where) + ".")
    if isinstance(exc, TimeoutError):
        return SourceError(f"{where} did not answer in time during {action} ({exc}).",
                           retryable=True)
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return SourceError(f"{where} is unreachable: {exc.strerror or exc}.", retryable=True)
    return SourceError(f"the connection to {where} dropped during {action} "
                       f"({exc.strerror or exc}).", retryable=True)
