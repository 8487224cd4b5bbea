"""The allowlist and recipient rules on their own (addresses no test client can come from)."""

from __future__ import annotations

import pytest

from mailvault.capture.access import AccessPolicy
from mailvault.config import SmtpSettings
from mailvault.errors import ConfigError


def test_default_accepts_any_recipient_only_from_loopback() -> None:
    policy = AccessPolicy.from_settings(SmtpSettings())
    assert policy.may_connect("203.0.113.9")
    assert policy.accepts_recipient("anyone@example.org", "127.0.0.1")
    assert policy.accepts_recipient("anyone@example.org", "::1")
    assert policy.accepts_recipient("anyone@example.org", "::ffff:127.0.0.1")
    assert not policy.accepts_recipient("anyone@example.org", "203.0.113.9")


def test_allowlist_and_recipients() -> None:
    policy = AccessPolicy.from_settings(SmtpSettings(
        allow=["192.0.2.0/24", "2001:db8::/32"], recipients=["journal@a.test", "b.test"]))
    assert policy.may_connect("192.0.2.77") and policy.may_connect("2001:db8::5")
    assert not policy.may_connect("198.51.100.1") and not policy.may_connect("garbage")
    assert policy.accepts_recipient("JOURNAL@a.test", "198.51.100.1")
    assert policy.accepts_recipient("x@b.test", "198.51.100.1")
    assert not policy.accepts_recipient("x@a.test", "127.0.0.1")


def test_bad_cidr_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        AccessPolicy.from_settings(SmtpSettings(allow=["10.0.0.0/33"]))
