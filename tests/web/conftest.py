"""Fixtures of the web tests. The one real Chromium of the session (``browser``) lives in
tests/conftest.py, since tests of other capabilities drive it too and Playwright's sync API
runs one instance per thread."""
