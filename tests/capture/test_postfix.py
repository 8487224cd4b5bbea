"""A real MTA in front of the archive: Postfix with always_bcc, and Postfix with the milter."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mailvault.search.query import parse
from mailvault.store import schema
from mailvault.vault import Vault
from tests.capture.conftest import Running, build, message_count, wait_until
from tests.capture.postfix import Postfix, start_postfix
from tests.full_disk import fill
from tests.support import stored_provenance


@pytest.fixture
def postfix_factory() -> Iterator[Callable[[dict[str, str]], Postfix]]:
    # Postfix's own processes run as the postfix user: pytest's temp folders are private
    # to root, so the instance lives in a folder of its own that they can enter.
    top = Path(tempfile.mkdtemp(prefix="mailvault-postfix-"))
    top.chmod(0o755)
    started: list[Postfix] = []

    def start(settings: dict[str, str]) -> Postfix:
        postfix = start_postfix(top / f"postfix{len(started)}", settings)
        started.append(postfix)
        return postfix

    yield start
    for postfix in started:
        postfix.stop()
    shutil.rmtree(top, ignore_errors=True)


def provenance_rows(vault: Vault) -> list[dict[str, object]]:
    with vault.engine.connect() as conn:
        return [stored_provenance(d)
                for d in conn.execute(select(schema.provenance.c.data)).scalars()]


def test_always_bcc_copies_are_archived(vault: Vault, serving: Callable[..., Running],
                                        postfix_factory: Callable[[dict[str, str]], Postfix]
                                        ) -> None:
    vault.settings.smtp.recipients = ["archive@archive.test"]
    running = serving()
    postfix = postfix_factory({
        "always_bcc": "archive@archive.test",
        "transport_maps": f"inline:{{archive.test=smtp:[127.0.0.1]:{running.port()}}}",
    })
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as client:
        for i in range(3):
            client.sendmail("alice@example.org", ["bob@example.org"], build(f"via postfix {i}"))
    wait_until(lambda: message_count(vault) == 3, what=f"3 archived; {postfix.log()[-800:]}")
    for prov in provenance_rows(vault):
        assert prov["envelope_from"] == "alice@example.org"
        assert prov["envelope_to"] == ["archive@archive.test"]
    wait_until(lambda: vault.index.count(parse('subject:"via postfix 2"')) == 1)


def test_milter_records_every_envelope_recipient(
        vault: Vault, serving: Callable[..., Running],
        postfix_factory: Callable[[dict[str, str]], Postfix]) -> None:
    running = serving({"smtp": [], "milter": ["127.0.0.1:0"]})
    postfix = postfix_factory({
        "smtpd_milters": f"inet:127.0.0.1:{running.port('milter')}",
        "non_smtpd_milters": "$smtpd_milters", "milter_default_action": "tempfail",
    })
    raw = build("board minutes", to="bob@example.org")
    with smtplib.SMTP("127.0.0.1", postfix.port, timeout=10) as client:
        client.sendmail("alice@example.org", ["bob@example.org", "auditor@example.org"], raw)
    wait_until(lambda: message_count(vault) == 1, what=f"the milter copy; {postfix.log()[-800:]}")
    (prov,) = provenance_rows(vault)
    assert prov["kind"] == "milter"
    assert prov["envelope_from"] == "alice@example.org"
    assert prov["envelope_to"] == ["bob@example.org", "auditor@example.org"]
    assert prov["client_address"] == "127.0.0.1"
    assert prov["extra"]["queue_id"]
    wait_until(lambda: vault.index.count(parse("bcc:auditor@example.org")) == 1)
    with vault.engine.connect() as conn:
        (sha,) = conn.execute(select(schema.messages.c.sha256)).scalars().all()
    assert sha  # the headers and body as Postfix holds them, Received line included


def test_milter_tempfails_when_it_cannot_store_and_postfix_keeps_the_message(
        vault: Vault, small_disk: Path, serving: Callable[..., Running],
        postfix_factory: Callable[[dict[str, str]], Postfix]) -> None:
    vault.settings.spool.folder = str(small_disk)
    running = serving({"smtp": [], "milter": ["127.0.0.1:0"]})
    postfix = postfix_factory({
        "smtpd_milters": f"inet:127.0.0.1:{running.port('milter')}",
        "non_smtpd_milters": "$smtpd_milters", "milter_default_action": "accept",
    })
    filler = fill(small_disk)
    raw = build("kept in the queue")
    subprocess.run(["sendmail", "-C", str(postfix.etc), "-f", "alice@example.org",
                    "bob@example.org", "auditor@example.org"], input=raw, check=True,
                   timeout=60)
    wait_until(lambda: "milter-reject: END-OF-MESSAGE" in postfix.log()
               and "4.3.0 The archive cannot store" in postfix.log(), what="a tempfail")
    assert postfix.queued() == 1
    assert message_count(vault) == 0
    filler.unlink()  # space comes back
    wait_until(lambda: message_count(vault) == 1, what=f"the retry; {postfix.log()[-800:]}")
    (prov,) = provenance_rows(vault)
    assert prov["envelope_to"] == ["bob@example.org", "auditor@example.org"]
    wait_until(lambda: postfix.queued() == 0, what="the queue to empty")
