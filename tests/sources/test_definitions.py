"""Source definitions are checked when built: one clear error for each unusable setting."""

from __future__ import annotations

import pytest

from mailvault.errors import ConfigError
from mailvault.sources.definitions import build

BASE = {"name": "s", "kind": "imap", "host": "h", "user": "u"}


def test_definitions_are_checked() -> None:
    spec = build({**BASE, "special_use": ["junk,\\Trash"], "tls": "starttls"})
    assert spec.special_use == ("Junk", "Trash") and spec.port == 143
    for wrong in ({"special_use": ["sent"]}, {"tls": "ssl"}, {"scope": "users"},
                  {"scope": "users", "auth": "master"}, {"kind": "pop3", "since": "2020-01-01"},
                  {"since": "2021-01-01", "before": "2020-01-01"}, {"name": "a b"}):
        with pytest.raises(ConfigError):
            build({**BASE, **wrong})
