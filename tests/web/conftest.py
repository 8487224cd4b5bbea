"""Fixtures of the web tests. The real Chromium of a module (``browser``) lives in
tests/conftest.py, since tests of other capabilities drive it too and Playwright's sync API
runs one instance per thread."""
