"""Fixtures of the web tests: one real Chromium for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Debian's Chromium (.ci/run installs the package); Playwright never downloads a browser here.
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """A headless Chromium driven by Playwright, shared by every test of the session (open a
    context of your own with ``browser.new_context()``); skipped where Chromium or
    Playwright is missing, a failure in CI."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()
