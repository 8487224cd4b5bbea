"""The index disk fills under `serve`: mail is still archived, the watermark never claims more
than the index committed, `status` says why the index is behind, and once space returns the
running server catches up by itself."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailvault.search import query as q
from mailvault.store import catalog
from mailvault.vault import Vault
from tests.capture.conftest import build, message_count, start_serving, wait_until
from tests.full_disk import fill, tmpfs
from tests.support import count, invoke

LATE = 40


@pytest.fixture
def small_index_vault(tmp_path: Path) -> Iterator[Vault]:
    """A vault whose index folder is a 3 MB tmpfs of its own."""
    path = tmp_path / "vault"
    with tmpfs(path / "index", "3m"):
        vault = Vault.create(path)
        try:
            yield vault
        finally:
            vault.close()


def index_status(vault: Vault) -> dict[str, object]:
    result = invoke("status", "--vault", vault.path, "--json")
    assert result.exit_code == 0, result.text
    index: dict[str, object] = result.json()["index"]
    return index


def watermark_is_honest(vault: Vault) -> bool:
    """Every message at or below the catalog's watermark has a committed document."""
    with vault.engine.connect() as conn:
        watermark = catalog.get_watermark(conn)
        below = catalog.count_ids_between(conn, 0, watermark)
    indexed = [i for i in vault.index.ids(q.MatchAll()) if i <= watermark]
    assert len(indexed) == below, f"watermark {watermark}, {len(indexed)} documents below it"
    return True


def test_index_disk_full_under_serve_heals_once_space_returns(
        small_index_vault: Vault) -> None:
    vault = small_index_vault
    running = start_serving(vault)
    try:
        with smtplib.SMTP("127.0.0.1", running.port(), timeout=10) as client:
            client.sendmail("a@example.org", ["b@example.org"], build("before"))
            wait_until(lambda: vault.index.count(q.MatchAll()) == 1, what="the first message")
            filler = fill(vault.path / "index")
            for i in range(LATE):
                client.sendmail("a@example.org", ["b@example.org"],
                                build(f"while full {i}", body=f"lateword{i} text\r\n" * 30))
        wait_until(lambda: message_count(vault) == LATE + 1, what="the catalog")
        wait_until(lambda: bool(index_status(vault)["problem"]), what="the index problem")
        assert watermark_is_honest(vault)
        index = index_status(vault)
        assert index["messages"] == LATE + 1
        assert index["indexed"] == vault.index.count(q.MatchAll()) < LATE + 1
        assert "full" in str(index["problem"])
        assert "index" in invoke("status", "--vault", vault.path).text
        filler.unlink()
        wait_until(lambda: watermark_is_honest(vault)
                   and vault.index.count(q.MatchAll()) == LATE + 1,
                   what="healing after space returned")
        assert count(vault.path, "subject:full") == LATE
        assert count(vault.path, "lateword7") == 1
        # serve rewrites its status file every second.
        wait_until(lambda: index_status(vault)["problem"] is None, what="the problem to clear")
        index = index_status(vault)
        assert (index["indexed"], index["behind"]) == (LATE + 1, 0)
    finally:
        running.stop()
