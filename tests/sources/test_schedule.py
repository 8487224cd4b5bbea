"""Schedules: intervals and cron expressions, and scheduled syncs under 'mailvault serve'
(through the spool, whose drain archives them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from mailvault.errors import ConfigError
from mailvault.serve import serve
from mailvault.sources import runs
from mailvault.sources.definitions import SourceSpec, build
from mailvault.sources.schedule import next_run
from mailvault.vault import Vault
from tests.sources.mailboxes import Mailbox, sha256
from tests.sources.support import message_hashes, per_folder

BASE = {"name": "s", "kind": "imap", "host": "h", "user": "u"}


def test_interval_and_cron_give_the_next_run() -> None:
    now = datetime(2024, 5, 1, 10, 7, tzinfo=UTC)
    every = build({**BASE, "interval": "15m"})
    assert next_run(every, None, now) == now
    assert next_run(every, now, now) == datetime(2024, 5, 1, 10, 22, tzinfo=UTC)
    cron = build({**BASE, "cron": "*/30 * * * *"})
    assert next_run(cron, now, now) == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    assert next_run(build(BASE), None, now) is None


@pytest.mark.parametrize("settings", [{"interval": "10s"}, {"interval": "soon"},
                                      {"cron": "every day"},
                                      {"interval": "1h", "cron": "0 * * * *"}])
def test_unusable_schedules_are_refused(settings: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        build({**BASE, **settings})


def test_scheduled_sync_runs_under_serve_through_the_spool(
        vault: Vault, messages: list[bytes], mailbox: Callable[[], Mailbox],
        add_source: Callable[..., SourceSpec]) -> None:
    owner = mailbox()
    owner.fill({"INBOX": messages[0:7], "Notes": messages[7:9]})
    spec = add_source(owner.address, owner.password, interval="1h")
    expected = {sha256(m) for m in messages[0:9]}

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(vault, stop, actor="test"))
        deadline = time.monotonic() + 60
        while message_hashes(vault) != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await task

    asyncio.run(main())

    assert message_hashes(vault) == expected
    assert per_folder(vault, spec.name) == {(owner.address, "INBOX"): 7,
                                            (owner.address, "Notes"): 2}
    with vault.engine.connect() as conn:
        run = runs.last(conn, spec.name)
    assert run is not None and run.status == "ok" and run.detail["spooled"] == 9

