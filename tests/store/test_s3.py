"""Blobs in S3 with Object Lock, against moto's standalone server (tests/s3_server.py).

The corpus's mbox files go into a vault created with ``init --blobs s3://...``: every message
comes back byte-exact from the bucket (ranged GETs), ``verify`` is clean, each object is
locked until the latest retain-until date of the messages it holds, a hold puts a legal hold
on exactly the objects holding held mail, a node killed between its local write and its
upload finishes the upload when it runs again, and the bucket's refusal to delete a locked
object is one sentence with nothing deleted.
"""

from __future__ import annotations

import hashlib
import os
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.compliance import holds as legal_holds
from mailvault.compliance import object_lock
from mailvault.errors import StoreError
from mailvault.store import catalog, schema
from mailvault.store.objects import SCHEME, ObjectBlobStore
from mailvault.usecases import disposition, holds
from mailvault.vault import Vault
from tests import s3_server as moto
from tests.capture.conftest import build, running_serve, wait_until
from tests.core.corpus_reading import mbox_messages
from tests.support import run

DAY = 86400
KEEP_DAYS = 3650
ADMIN = Principal(name="test-admin", roles=frozenset({Role.ADMIN, Role.AUDITOR}))


@pytest.fixture
def s3_env(s3_server: moto.MotoServer, monkeypatch: pytest.MonkeyPatch) -> moto.MotoServer:
    """The test keys in the environment (what commands and Vault.open read), 1 MB objects."""
    for name, value in moto.KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAILVAULT_STORE_S3_OBJECT_MB", "1")
    monkeypatch.delenv("MAILVAULT_STORE_BLOBS", raising=False)
    monkeypatch.delenv("MAILVAULT_STORE_S3_ENDPOINT", raising=False)
    return s3_server


def _init(server: moto.MotoServer, path: Path, bucket: str, days: int = KEEP_DAYS,
          counted_from: str = "archived") -> None:
    """A vault on this bucket, keeping mail ``days`` from ``counted_from`` (by default from
    archiving: every lock date lies in the future)."""
    done = run("init", "--vault", path, "--blobs", f"s3://{bucket}/archive",
               "--s3-endpoint", server.endpoint)
    assert done.returncode == 0, done.stderr.decode()
    with open(path / "mailvault.toml", "a", encoding="utf-8") as toml:
        toml.write(f'\n[retention]\ndefault_days = {days}\ndefault_from = "{counted_from}"\n')


@pytest.fixture
def s3_vault(s3_env: moto.MotoServer, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A vault whose blobs go to a fresh bucket: (vault folder, bucket)."""
    bucket = s3_env.new_bucket()
    _init(s3_env, tmp_path / "vault", bucket)
    yield tmp_path / "vault", bucket


def _local_volumes(path: Path) -> list[Path]:
    return sorted((path / "volumes").rglob("*.vol"))


def _objects(server: moto.MotoServer, bucket: str) -> dict[str, dict[str, object]]:
    client = server.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: client.head_object(Bucket=bucket, Key=key) for key in keys}


@pytest.mark.timeout(600)
def test_corpus_mbox_round_trips_through_the_bucket(s3_vault: tuple[Path, str],
                                                    s3_env: moto.MotoServer,
                                                    corpus: Path) -> None:
    """Five of the corpus's small mbox files (129 messages), in two imports (two objects at
    least: each command seals and uploads what it wrote). The slow test below takes them
    all; here the number of messages is not the point, and each costs a ranged GET."""
    enron = corpus / "mbox" / "enron-allen-p"
    _round_trip(s3_vault, s3_env, [
        [corpus / "mbox" / "rlug" / "rlug.mbox", enron / "inbox.mbox", enron / "notes_inbox.mbox"],
        [enron / "straw.mbox", enron / "contacts.mbox"]])


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_corpus_mbox_round_trips_through_the_bucket(s3_vault: tuple[Path, str],
                                                          s3_env: moto.MotoServer,
                                                          corpus: Path) -> None:
    """All of the corpus's mbox files (3,039 messages, a ranged GET each: minutes on moto)."""
    _round_trip(s3_vault, s3_env, [sorted((corpus / "mbox").rglob("*.mbox"))])


def _round_trip(s3_vault: tuple[Path, str], s3_env: moto.MotoServer,
                imports: list[list[Path]]) -> None:
    path, bucket = s3_vault
    expected = {hashlib.sha256(m.raw).hexdigest(): m.raw
                for boxes in imports for box in boxes for m in mbox_messages(box)}
    for boxes in imports:
        done = run("import", "--vault", path, *boxes, timeout=900)
        assert done.returncode == 0, done.stderr.decode()

    # Every volume went up and left the disk; the catalog names each one's object.
    assert _local_volumes(path) == []
    objects = _objects(s3_env, bucket)
    assert len(objects) >= 2  # 1 MB objects: the corpus needs several
    with Vault.open(path) as vault:
        assert isinstance(vault.blobs, ObjectBlobStore)
        places = catalog.volume_places(vault.engine)
        used = {r.volume_id for r in vault.engine.connect().execute(
            select(schema.messages.c.volume_id).distinct())}
        assert all(places[v].startswith(SCHEME) for v in used)
        # Byte-exact from ranged GETs, for every message.
        with vault.engine.connect() as conn:
            rows = list(catalog.iter_messages(conn))
        assert {r.sha256 for r in rows} == set(expected)
        for row in rows:
            assert vault.read_raw(row) == expected[row.sha256]
        # Each object is locked (compliance mode) until its latest message's retain-until.
        m = schema.messages
        with vault.engine.connect() as conn:
            latest = dict(conn.execute(select(m.c.volume_id, func.max(m.c.archived_at))
                                       .group_by(m.c.volume_id)).all())
        for volume_id, archived in latest.items():
            head = objects[vault.blobs.objects.bucket.key_of(places[volume_id])]
            assert head["ObjectLockMode"] == "COMPLIANCE"
            assert int(head["ObjectLockRetainUntilDate"].timestamp()) \
                == archived + KEEP_DAYS * DAY  # type: ignore[attr-defined]
            assert head["ObjectLockLegalHoldStatus"] == "OFF"
    # The command line reads them back too, and verify (locks included) is clean.
    for row in rows[:3]:
        got = run("get", "--vault", path, str(row.id), "--raw")
        assert got.returncode == 0 and got.stdout == expected[row.sha256]
    checked = run("verify", "--vault", path, "--json")
    assert checked.returncode == 0, checked.stdout.decode()


def _import_some(path: Path, messages: list[bytes]) -> None:
    box = path.parent / "some.mbox"
    box.write_bytes(b"".join(b"From someone@example.org Mon Jan  1 00:00:00 2024\n" + raw
                             + b"\n" for raw in messages))
    done = run("import", "--vault", path, box)
    assert done.returncode == 0, done.stderr.decode()


def _message(n: int, subject: str) -> bytes:
    return (f"From: a{n}@example.org\nTo: b@example.org\nSubject: {subject} {n}\n"
            f"Message-ID: <{n}.{subject}@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
            f"\n{os.urandom(16).hex()} body {n}\n").encode()


def test_a_hold_sets_the_legal_hold_of_the_objects_holding_held_mail(
        s3_vault: tuple[Path, str], s3_env: moto.MotoServer) -> None:
    path, bucket = s3_vault
    _import_some(path, [_message(n, "first") for n in range(3)])
    _import_some(path, [_message(n, "second") for n in range(3)])
    with Vault.open(path) as vault:
        places = catalog.volume_places(vault.engine)
        held_key = next(vault.blobs.objects.bucket.key_of(url)  # type: ignore[attr-defined]
                        for url in places.values() if url.startswith(SCHEME))
        assert len(places) == 2
        holds.place_hold(vault, ADMIN, "case-1", reason="litigation", owner="legal",
                         query="subject:first")
        heads = _objects(s3_env, bucket)
        assert heads[held_key]["ObjectLockLegalHoldStatus"] == "ON"
        assert [k for k, h in heads.items() if h["ObjectLockLegalHoldStatus"] == "ON"] \
            == [held_key]
        holds.release_hold(vault, ADMIN, "case-1")
        assert all(h["ObjectLockLegalHoldStatus"] == "OFF"
                   for h in _objects(s3_env, bucket).values())


def test_verify_reports_an_object_whose_lock_falls_short(s3_vault: tuple[Path, str]) -> None:
    path, _bucket = s3_vault
    _import_some(path, [_message(n, "kept") for n in range(2)])
    with Vault.open(path) as vault:
        # A hold placed behind the use case's back: the object never got its legal hold.
        legal_holds.place(vault, "quiet", custodian=None, query="subject:kept",
                          date_from=None, date_to=None, reason="r", owner="o", actor="t")
        problems = object_lock.lock_problems(vault)
        assert len(problems) == 1 and "has no legal hold" in problems[0]
        object_lock.refresh(vault)
        assert object_lock.lock_problems(vault) == []


def test_the_bucket_refuses_to_delete_a_locked_object_in_one_sentence(
        s3_vault: tuple[Path, str], s3_env: moto.MotoServer) -> None:
    path, bucket = s3_vault
    _import_some(path, [_message(n, "locked") for n in range(2)])
    with Vault.open(path) as vault:
        (volume_id, url), = [(v, u) for v, u in catalog.volume_places(vault.engine).items()
                             if u.startswith(SCHEME)]
        before = _objects(s3_env, bucket)
        with pytest.raises(StoreError) as refused:
            object_lock.delete_object(vault, volume_id)
        sentence = str(refused.value)
        assert sentence.startswith("the bucket refused to delete ")
        assert sentence.endswith("its Object Lock has not passed or it is under legal hold.")
        assert sentence.count(". ") == 0 and "\n" not in sentence
        # Nothing half-deleted: the object, its version and the catalog's pointer remain.
        assert _objects(s3_env, bucket).keys() == before.keys()
        assert catalog.volume_places(vault.engine)[volume_id] == url
        with vault.engine.connect() as conn:
            rows = list(catalog.iter_messages(conn))
        assert all(vault.read_raw(r) for r in rows)
        # And disposition's reclaim leaves a locked object alone.
        assert object_lock.reclaim(vault) == []


def test_disposition_deletes_an_object_once_its_lock_has_passed(
        s3_env: moto.MotoServer, tmp_path: Path) -> None:
    # Kept one day from the message's own date (2024): every lock has passed already.
    bucket = s3_env.new_bucket()
    path = tmp_path / "vault"
    _init(s3_env, path, bucket, days=1, counted_from="date")
    _import_some(path, [_message(n, "old") for n in range(3)])
    assert len(_objects(s3_env, bucket)) == 1
    with Vault.open(path) as vault:
        run_ = disposition.dispose(vault, ADMIN)
        assert run_.disposed == 3
        places = catalog.volume_places(vault.engine)
    assert _objects(s3_env, bucket) == {}
    assert [p for p in places.values() if p.startswith(object_lock.DELETED)]
    versions = s3_env.client().list_object_versions(Bucket=bucket)
    assert not versions.get("Versions")


_KILLED_IMPORT = """\
import os, signal, sys
from pathlib import Path
from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role
from mailvault.usecases import importing
from mailvault.vault import Vault
who = Principal(name="test", roles=frozenset({Role.ADMIN}))
vault = Vault.open(Path(sys.argv[1]))
planned = importing.plan_import([Path(sys.argv[2])], format="auto", folder=None,
                                since=None, before=None)
result = importing.import_files(vault, who, planned)
assert result.report.archived, result
# Archived (fsynced, committed), not uploaded: killed before anything else happens.
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_node_killed_before_uploading_finishes_the_upload_when_it_runs_again(
        s3_vault: tuple[Path, str], s3_env: moto.MotoServer) -> None:
    path, bucket = s3_vault
    sent = [_message(n, "killed") for n in range(4)]
    box = path.parent / "killed.mbox"
    box.write_bytes(b"".join(b"From x@example.org Mon Jan  1 00:00:00 2024\n" + raw + b"\n"
                             for raw in sent))
    killed = subprocess.run([sys.executable, "-c", _KILLED_IMPORT, str(path), str(box)],
                            capture_output=True, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert len(_local_volumes(path)) == 1
    assert _objects(s3_env, bucket) == {}
    # The next command on this node uploads it, and the mail reads back from the bucket.
    checked = run("verify", "--vault", path, "--json")
    assert checked.returncode == 0, checked.stdout.decode()
    assert _local_volumes(path) == []
    assert len(_objects(s3_env, bucket)) == 1
    with Vault.open(path) as vault, vault.engine.connect() as conn:
        got = {vault.read_raw(r) for r in catalog.iter_messages(conn)}
    assert got == set(sent)


def test_init_refuses_a_bucket_without_object_lock(s3_env: moto.MotoServer,
                                                   tmp_path: Path) -> None:
    bucket = s3_env.new_bucket(lock=False)
    done = run("init", "--vault", tmp_path / "vault", "--blobs", f"s3://{bucket}/x",
               "--s3-endpoint", s3_env.endpoint)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == (f"mailvault: the bucket {bucket} does not have Object "
                                            "Lock enabled (create it with Object Lock on).")
    assert not (tmp_path / "vault").exists()


def test_credentials_from_a_file_are_stored_sealed(s3_env: moto.MotoServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    secret = moto.KEYS["AWS_SECRET_ACCESS_KEY"] + "-in-a-file"
    keys = tmp_path / "s3.ini"
    keys.write_text(f"[default]\naws_access_key_id = filed\naws_secret_access_key = {secret}\n")
    bucket = s3_env.new_bucket()
    path = tmp_path / "vault"
    done = run("init", "--vault", path, "--blobs", f"s3://{bucket}/p", "--s3-endpoint",
               s3_env.endpoint, "--s3-credentials", keys)
    assert done.returncode == 0, done.stderr.decode()
    keys.unlink()
    stored = b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())
    assert secret.encode() not in stored and b"filed" not in stored
    # Later commands use the sealed keys (moto accepts any keys; the upload needs some).
    _import_some(path, [_message(1, "filed")])
    assert len(_objects(s3_env, bucket)) == 1


def test_the_bucket_can_be_named_in_mailvault_toml(s3_env: moto.MotoServer,
                                                   tmp_path: Path) -> None:
    path = tmp_path / "vault"
    assert run("init", "--vault", path).returncode == 0
    bucket = s3_env.new_bucket()
    toml = path / "mailvault.toml"
    toml.write_text(toml.read_text().replace(
        "[store]\n", f'[store]\nblobs = "s3://{bucket}/t"\ns3_endpoint = "{s3_env.endpoint}"\n'))
    _import_some(path, [_message(n, "toml") for n in range(2)])
    assert len(_objects(s3_env, bucket)) == 1
    assert _local_volumes(path) == []


def test_the_backup_command_copies_the_objects(s3_vault: tuple[Path, str]) -> None:
    path, bucket = s3_vault
    _import_some(path, [_message(1, "backup")])
    done = run("backup", "--vault", path, "--to", path.parent / "backup")
    assert done.returncode == 0, done.stderr.decode()
    assert f"1 of them objects of s3://{bucket}/archive" in done.stdout.decode()
    checked = run("backup", "verify", path.parent / "backup")
    assert checked.returncode == 0, checked.stdout.decode()


def test_serve_uploads_a_quiet_nodes_mail_while_it_runs(
        s3_vault: tuple[Path, str], s3_env: moto.MotoServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Mail taken by SMTP reaches the bucket while serve still runs, though its volume is far
    from full (1 MB objects here): the archiver seals a volume that has taken mail for
    ``s3_upload_after_s`` and uploads it; mail that arrives after goes into a new volume,
    which follows the same way."""
    path, bucket = s3_vault
    monkeypatch.setenv("MAILVAULT_STORE_S3_UPLOAD_AFTER_S", "1")
    first, second = build("quiet node, first"), build("quiet node, second")
    with Vault.open(path) as vault, running_serve(vault) as running:
        def sent_and_uploaded(raw: bytes, objects: int) -> None:
            with smtplib.SMTP("127.0.0.1", running.port()) as client:
                client.sendmail("alice@example.org", ["archive@example.org"], raw)
            wait_until(lambda: len(_objects(s3_env, bucket)) == objects
                       and _local_volumes(path) == [], what=f"{objects} object(s), no local volume")

        sent_and_uploaded(first, 1)
        sent_and_uploaded(second, 2)
        with vault.engine.connect() as conn:
            rows = list(catalog.iter_messages(conn))
            places = catalog.volume_places(vault.engine)
        assert {vault.read_raw(r) for r in rows} == {first, second}
        assert all(place.startswith(SCHEME) for place in places.values())
        # Each object carries the lock its mail needs.
        assert object_lock.lock_problems(vault) == []
