"""TLS for sources: certificates verified by default, an optional CA file, and an explicit
opt-out that status shows as a warning."""

from __future__ import annotations

import ssl
from pathlib import Path

from mailvault.errors import InputError


def client_context(ca_file: str | None, insecure_skip_verify: bool) -> ssl.SSLContext:
    """A client context: system CAs (plus ``ca_file``), hostname checked, TLS 1.2 at least."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
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
