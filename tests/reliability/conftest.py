"""Fixtures for the reliability tests: the test Dovecot (as the source tests start it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sources import dovecot


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[dovecot.Dovecot]:
    """Debian's Dovecot on free loopback ports."""
    server = dovecot.start()
    try:
        yield server
    finally:
        dovecot.remove(server)
