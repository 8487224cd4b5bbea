"""TOTP second factor (RFC 6238: 6 digits, 30-second steps, SHA-1, as authenticator apps expect).

A code is accepted one step either side of now (clocks drift, people type slowly), and a step
once used cannot be used again: the caller stores the last accepted step and refuses any step
not after it, so a code seen over someone's shoulder is worthless within its window.
"""

from __future__ import annotations

import hmac

import pyotp

WINDOW_STEPS = 1


def new_secret() -> str:
    """A fresh base32 secret (160 bits, the RFC 4226 recommendation)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as text or as a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step ``code`` belongs to, within the window around ``at``; None if none."""
    cleaned = code.strip().replace(" ", "")
    if not cleaned.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(at)
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        if hmac.compare_digest(cleaned, totp.generate_otp(step)):
            return step
    return None
