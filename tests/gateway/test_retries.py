"""The retry window forgets a failed delivery's copies after its time, and its oldest ones
past its size."""

from __future__ import annotations

from mailvault.gateway.retries import RetryWindow


def test_copies_are_forgotten_after_the_window_and_past_the_limit() -> None:
    now = [0.0]
    window = RetryWindow(seconds=60.0, limit=2, clock=lambda: now[0])
    assert not window.held("box", b"a")
    window.remember("box", b"a")
    now[0] = 30.0
    window.remember("box", b"b")
    assert window.held("box", b"a") and window.held("box", b"b")
    assert not window.held("other", b"a")
    now[0] = 61.0
    assert not window.held("box", b"a") and window.held("box", b"b")
    window.remember("box", b"c")
    window.remember("box", b"d")
    assert not window.held("box", b"b")
    assert window.held("box", b"c") and window.held("box", b"d")
