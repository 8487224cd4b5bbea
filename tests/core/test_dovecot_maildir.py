"""A Maildir++ tree written by a real Dovecot (``doveadm save``), with the index, uidlist and
subscription files Dovecot keeps beside cur/ and new/: every message archived byte-exact in
its folder, Dovecot's own files neither archived nor reported."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import build_message, invoke, run, search_json, unavailable

FOLDERS = {"INBOX": 3, "Archive": 2, "Lists/linux": 2}


def dovecot_config(base: Path) -> Path:
    """Dovecot with no network service: only what doveadm needs (auth, storage)."""
    (base / "mail" / "alice").mkdir(parents=True)
    (base / "users").write_text(f"alice:{{PLAIN}}pw:65534:65534::{base / 'mail' / 'alice'}\n")
    config = base / "dovecot.conf"
    config.write_text(f"""\
instance_name = mailvault-core-test
base_dir = {base / 'run'}
state_dir = {base / 'state'}
log_path = {base / 'dovecot.log'}
protocols =
ssl = no
mail_location = maildir:~/Maildir
first_valid_uid = 1
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {base / 'users'}
}}
userdb {{
  driver = passwd-file
  args = {base / 'users'}
}}
""")
    os.chown(base / "mail" / "alice", 65534, 65534)
    return config


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Path]:
    """A running Dovecot master (for doveadm's user lookups); yields its config file."""
    if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
        unavailable("Dovecot is not installed (.ci/run installs dovecot-imapd)")
    if os.geteuid() != 0:
        unavailable("the test Dovecot stores mail as uid 65534, which needs root")
    base = Path(f"/tmp/mv-dv-{os.getpid()}")  # short: unix socket paths are limited
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    config = dovecot_config(base)
    master = subprocess.Popen(["dovecot", "-F", "-c", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (base / "run" / "auth-userdb").exists():
            assert master.poll() is None, (base / "dovecot.log").read_text()
            assert time.monotonic() < deadline, "Dovecot did not start"
            time.sleep(0.02)
        yield config
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def doveadm(config: Path, *args: str, data: bytes | None = None) -> None:
    done = subprocess.run(["doveadm", "-c", str(config), *args], input=data,
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()


def test_a_dovecot_maildir(dovecot: Path, tmp_path: Path) -> None:
    maildir = Path(dovecot.parent / "mail" / "alice" / "Maildir")
    sent: dict[str, list[bytes]] = {}
    for folder, n in FOLDERS.items():
        if folder != "INBOX":
            doveadm(dovecot, "mailbox", "create", "-u", "alice", "-s", folder)
        sent[folder] = [build_message(subject=f"{folder} {i}", body=f"In {folder}.\n")
                        for i in range(n)]
        for raw in sent[folder]:
            doveadm(dovecot, "save", "-u", "alice", "-m", folder, data=raw)
    assert (maildir / "dovecot-uidlist").exists() and (maildir / "subscriptions").exists()

    vault = tmp_path / "vault"
    invoke("init", "--vault", vault)
    result = run("import", maildir, "--vault", vault, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["archived"] == sum(FOLDERS.values())
    assert summary["skipped"] == [] and summary["refused"] == 0

    # What Dovecot wrote is what must come back: the files in cur/ and new/.
    on_disk = {p.read_bytes() for p in maildir.rglob("*") if p.parent.name in ("cur", "new")}
    rows = search_json(vault, "")
    archived = {invoke("get", str(r["id"]), "--raw", "--vault", vault).stdout for r in rows}
    assert archived == on_disk
    names = {"INBOX": "Maildir", "Archive": "Maildir/Archive",
             "Lists/linux": "Maildir/Lists/linux"}
    for folder, raws in sent.items():
        subjects = {r["subject"] for r in rows if r["folder"] == names[folder]}
        assert subjects == {f"{folder} {i}" for i in range(len(raws))}
