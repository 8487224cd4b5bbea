"""Two `serve` nodes sharing one PostgreSQL catalog and one S3 bucket (moto) take SMTP load at
once; one is killed with SIGKILL mid-load and started again. Then every acknowledged message
is archived exactly once (one message, one arrival), each node's own index holds every
message (fed from the catalog), `verify` and `audit verify` are clean on both, and no
scheduled job ran on two nodes at the same time: every claimed run (store/claims.py) ended
before the next run of its job started, the periodic passes ran once for the two nodes, and
the scheduled source synced once.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailvault.store import claims, schema
from mailvault.vault import Vault
from tests import s3_server as moto
from tests.postgresql.conftest import Catalog, join
from tests.reliability.invariants import check_vault
from tests.reliability.processes import wait_for
from tests.reliability.serving import Senders, Server
from tests.support import run

LEASE_S = 4.0
# Messages a second per node: enough to be mid-load at the kill, few enough to check quickly.
RATE = 25.0
BEFORE_KILL = 40
AFTER_RESTART = 20
# The periodic passes of serve: each must run once for both nodes (their periods are long).
PERIODIC = ("lifecycle", "review", "storage-sampler")
SOURCE = """
[sources.upstream]
kind = "imap"
host = "127.0.0.1"
port = {port}
tls = "none"
user = "archive"
password_file = "{password_file}"
interval = "1h"
"""


def closed_port() -> int:
    """A loopback port nothing listens on (the source's syncs fail at once, and are runs)."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_nodes_take_smtp_load_and_one_is_killed(pg_catalog: Catalog,
                                                    s3_server: moto.MotoServer,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = s3_server.new_bucket()
    for name, value in moto.KEYS.items():  # this process reads the bucket too
        monkeypatch.setenv(name, value)
    keys = {**moto.KEYS, "MAILVAULT_SERVE_LEASE_S": str(LEASE_S),
            "MAILVAULT_TIERS_DEEP_AFTER_DAYS": "3650"}
    first = tmp_path / "node-a"
    made = run("init", "--vault", first, "--catalog", pg_catalog.url,
               "--catalog-password-file", pg_catalog.password_file,
               "--blobs", f"s3://{bucket}/vault", "--s3-endpoint", s3_server.endpoint,
               env=keys)
    assert made.returncode == 0, made.stderr.decode()
    password = tmp_path / "imap-password"
    password.write_text("secret\n")
    with open(first / "mailvault.toml", "a", encoding="utf-8") as settings:
        settings.write(SOURCE.format(port=closed_port(), password_file=password))
    second = join(first, tmp_path / "node-b")
    env_a = {**keys, "MAILVAULT_SERVE_NODE": "node-a"}
    env_b = {**keys, "MAILVAULT_SERVE_NODE": "node-b"}

    node_a, node_b = Server.start(first, env=env_a), Server.start(second, env=env_b)
    current = {"a": node_a}
    try:
        with Senders(lambda: current["a"].port, tag="to-a", rate=RATE) as to_a, \
                Senders(lambda: node_b.port, tag="to-b", rate=RATE) as to_b:
            wait_for(lambda: to_a.count() >= BEFORE_KILL and to_b.count() >= BEFORE_KILL,
                     "mail acknowledged by both nodes")
            current["a"].kill()  # SIGKILL, mid-load: its spool and its claims are left
            current["a"] = Server.start(first, env=env_a)
            before = to_a.count()
            wait_for(lambda: to_a.count() >= before + AFTER_RESTART,
                     "mail acknowledged after the restart")
        acknowledged = to_a.acknowledged | to_b.acknowledged
        with Vault.open(second) as vault:
            def archived() -> int:
                with vault.engine.connect() as conn:
                    return int(conn.execute(select(func.count())
                                            .select_from(schema.messages)).scalar_one())
            wait_for(lambda: archived() >= len(acknowledged), "both archivers")
        current["a"].stop()
        node_b.stop()
    finally:
        current["a"].kill()
        node_b.kill()

    facts = check_vault(first, present=acknowledged)
    assert facts.messages == len(acknowledged)
    check_vault(second, present=acknowledged)  # node b's own index, spool and verify
    with Vault.open(first) as vault:
        with vault.engine.connect() as conn:
            p = schema.provenance
            twice = conn.execute(select(p.c.message_id).group_by(p.c.message_id)
                                 .having(func.count() > 1)).scalars().all()
            syncs = conn.execute(select(func.count()).select_from(schema.source_runs)
                                 .where(schema.source_runs.c.source == "upstream")
                                 ).scalar_one()
        history = claims.history(vault.engine)
    assert not twice, f"messages arrived more than once: {twice[:5]}"
    assert syncs == 1
    runs = defaultdict(list)
    for job_run in history:
        runs[job_run.job].append(job_run)
    for job, each in runs.items():
        each.sort(key=lambda r: r.started_at)
        for earlier, later in pairwise(each):
            # A run never ended (its node was killed) lasted at most until its lease ran out.
            end = earlier.ended_at if earlier.ended_at is not None \
                else earlier.renewed_at + LEASE_S
            assert end <= later.started_at, f"{job} ran twice at once: {earlier} {later}"
    for job in PERIODIC:
        assert [r.outcome for r in runs[job]].count(claims.DONE) == 1, runs[job]
    assert [r.outcome for r in runs["sync:upstream"]].count(claims.DONE) == 1
    nodes = {r.node for r in history}
    assert nodes <= {"node-a", "node-b"}
