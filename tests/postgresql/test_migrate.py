"""`mailvault migrate`: an embedded vault moved to PostgreSQL (catalog) and moto's S3 server
(blobs, with Object Lock), resumable and verified message by message.

The corpus goes into an embedded vault, which is moved; every message then comes back
byte-exact through the new vault (`search`, `get --raw`), its audit chain verifies with one
entry for the move, and the source is as it was. A run killed with SIGKILL part-way through
the catalog is finished by the next run, with no row copied twice. A byte flipped in a
source volume is reported by the verification, which exits non-zero.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailvault.store import audit, catalog, schema
from mailvault.vault import CATALOG_FILE, Vault
from tests import s3_server as moto
from tests.core.corpus_reading import eml_messages, mbox_messages
from tests.postgresql.conftest import Catalog
from tests.support import run, search_json


@pytest.fixture
def s3_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The moto server's keys in the environment (what migrate and the new vault read)."""
    for name, value in moto.KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAILVAULT_STORE_S3_OBJECT_MB", "1")


def _embedded(tmp_path: Path, *paths: Path) -> tuple[Path, dict[str, bytes]]:
    """An embedded vault holding these corpus files, and what it holds by SHA-256."""
    vault = tmp_path / "embedded"
    made = run("init", "--vault", vault)
    assert made.returncode == 0, made.stderr.decode()
    imported = run("import", *paths, "--vault", vault)
    assert imported.returncode == 0, imported.stderr.decode()
    expected: dict[str, bytes] = {}
    for path in paths:
        found = mbox_messages(path) if path.suffix == ".mbox" else eml_messages(path)
        expected.update((m.sha256, m.raw) for m in found)
    return vault, expected


def _small(corpus: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A vault of one folder of the corpus's EML files (87 messages: the default tests)."""
    return _embedded(tmp_path, corpus / "eml" / "enmime")


def _migrate(source: Path, target: Path, pg: Catalog | None, bucket: str | None,
             server: moto.MotoServer | None) -> subprocess.CompletedProcess[bytes]:
    args: list[str | Path] = ["migrate", "--vault", source, "--into", target]
    if pg is not None:
        args += ["--to", pg.url, "--catalog-password-file", pg.password_file]
    if bucket is not None and server is not None:
        args += ["--blobs", f"s3://{bucket}/moved", "--s3-endpoint", server.endpoint]
    return run(*args)


def _tree(path: Path) -> dict[str, str]:
    """Every file below ``path`` and its SHA-256 (the source must not change)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*"))
            if p.is_file() and not p.name.startswith(CATALOG_FILE)}


def test_an_embedded_vault_moves_to_postgresql_and_s3_byte_exact(
        corpus: Path, pg_catalog: Catalog, s3_server: moto.MotoServer, s3_keys: None,
        tmp_path: Path) -> None:
    source, expected = _small(corpus, tmp_path)
    _moves_byte_exact(source, expected, pg_catalog, s3_server, tmp_path,
                      "subject:attachment")


@pytest.mark.slow
def test_the_corpus_moves_to_postgresql_and_s3_byte_exact(
        corpus: Path, pg_catalog: Catalog, s3_server: moto.MotoServer, s3_keys: None,
        tmp_path: Path) -> None:
    source, expected = _embedded(tmp_path, corpus / "mbox" / "enron-allen-p" /
                                 "_sent_mail.mbox", corpus / "eml")
    _moves_byte_exact(source, expected, pg_catalog, s3_server, tmp_path,
                      "from:phillip.allen@enron.com")


def _moves_byte_exact(source: Path, expected: dict[str, bytes], pg_catalog: Catalog,
                      s3_server: moto.MotoServer, tmp_path: Path, query: str) -> None:
    target = tmp_path / "moved"
    bucket = s3_server.new_bucket()
    before = _tree(source)
    moved = _migrate(source, target, pg_catalog, bucket, s3_server)
    assert moved.returncode == 0, moved.stdout.decode() + moved.stderr.decode()
    assert b"read every one back intact" in moved.stdout
    assert not (target / CATALOG_FILE).exists()
    assert not list((target / "volumes").rglob("*.vol"))
    rows = search_json(target, "")
    assert sorted(r["sha256"] for r in rows) == sorted(expected)
    found = search_json(target, query)
    assert found
    got = run("get", str(found[0]["id"]), "--raw", "--vault", target)
    assert got.returncode == 0
    assert got.stdout == expected[found[0]["sha256"]]
    with Vault.open(target) as opened, opened.engine.connect() as conn:
        assert opened.engine.dialect.name == "postgresql"
        for row in catalog.iter_messages(conn):
            assert opened.read_raw(row) == expected[row.sha256]
        moves = [e for e in audit.entries(conn, None) if e.action == "migrate"]
        assert len(moves) == 1
    verified = run("audit", "verify", "--vault", target)
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    objects = s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert objects
    # The source is as it was.
    assert _tree(source) == before


_KILLED_MIGRATE = """\
import os, signal, sys
from pathlib import Path
from mailvault.store import catalog_copy
from mailvault.usecases import migrating
from mailvault.accounts.principal import Principal
from mailvault.accounts.roles import Role

catalog_copy.CHUNK_ROWS = 10
seen = []

def progress(table, rows):
    seen.append(table)
    if table == "addresses" and seen.count("addresses") == 3:
        os.kill(os.getpid(), signal.SIGKILL)

source, target, url, password_file = sys.argv[1:5]
migrating.migrate(Principal("test", frozenset({Role.ADMIN})), Path(source),
                  migrating.Destination(Path(target), url, password_file), progress)
"""


def test_a_killed_migrate_is_finished_by_the_next_run_without_duplicates(
        corpus: Path, pg_catalog: Catalog, tmp_path: Path) -> None:
    source, expected = _small(corpus, tmp_path)
    target = tmp_path / "moved"
    killed = subprocess.run([sys.executable, "-c", _KILLED_MIGRATE, str(source), str(target),
                             pg_catalog.url, str(pg_catalog.password_file)],
                            capture_output=True, check=False, timeout=300,
                            env={**os.environ})
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert (target / "migrating.json").exists()
    moved = _migrate(source, target, pg_catalog, None, None)
    assert moved.returncode == 0, moved.stdout.decode() + moved.stderr.decode()
    assert not (target / "migrating.json").exists()
    with Vault.open(source) as before, Vault.open(target) as after:
        for table in schema.metadata.sorted_tables:
            with before.engine.connect() as old, after.engine.connect() as new:
                count = select(func.count()).select_from(table)
                held = old.execute(count).scalar() or 0
                # The migration's own audit entry; the default retention policy, which the
                # target makes from the same settings on first use.
                extra = {"audit_log": 1, "retention_policies": 0 if held else 1}
                assert new.execute(count).scalar() == held + extra.get(table.name, 0), \
                    table.name
        with after.engine.connect() as conn:
            assert sorted(r.sha256 for r in catalog.iter_messages(conn)) == sorted(expected)
    # The volumes stay local without --blobs: the target keeps its own copies.
    assert list((target / "volumes").rglob("*.vol"))


def test_a_flipped_byte_in_the_source_is_reported_and_exits_non_zero(
        corpus: Path, pg_catalog: Catalog, tmp_path: Path) -> None:
    source, _expected = _small(corpus, tmp_path)
    volume = sorted((source / "volumes").rglob("*.vol"))[0]
    volume.chmod(0o600)
    data = bytearray(volume.read_bytes())
    data[len(data) // 2] ^= 0x01
    volume.write_bytes(bytes(data))
    target = tmp_path / "moved"
    moved = _migrate(source, target, pg_catalog, None, None)
    assert moved.returncode == 1
    assert b"cannot be read back from the target" in moved.stderr
    assert (target / "migrating.json").exists()
    with Vault.open(target) as opened, opened.engine.connect() as conn:
        assert not [e for e in audit.entries(conn, None) if e.action == "migrate"]
    # Run again, it checks again (and finds the same).
    again = _migrate(source, target, pg_catalog, None, None)
    assert again.returncode == 1, again.stderr.decode()
    assert b"cannot be read back from the target" in again.stderr


def test_a_wrong_password_is_one_sentence_and_makes_nothing(
        corpus: Path, pg_catalog: Catalog, tmp_path: Path) -> None:
    source, _expected = _embedded(tmp_path, corpus / "eml" / "nodemailer")
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    wrong.chmod(0o600)
    target = tmp_path / "moved"
    refused = run("migrate", "--vault", source, "--into", target, "--to", pg_catalog.url,
                  "--catalog-password-file", wrong)
    assert refused.returncode == 1
    assert b"cannot be used" in refused.stderr and b"password" in refused.stderr
    assert len(refused.stderr.decode().strip().splitlines()) == 1
    assert not target.exists()
    moved = _migrate(source, target, pg_catalog, None, None)
    assert moved.returncode == 0, moved.stdout.decode() + moved.stderr.decode()


def test_a_bucket_without_object_lock_is_one_sentence_and_makes_nothing(
        corpus: Path, s3_server: moto.MotoServer, s3_keys: None, tmp_path: Path) -> None:
    source, _expected = _embedded(tmp_path, corpus / "eml" / "nodemailer")
    target = tmp_path / "moved"
    refused = run("migrate", "--vault", source, "--into", target, "--blobs",
                  f"s3://{s3_server.new_bucket(lock=False)}/x", "--s3-endpoint",
                  s3_server.endpoint)
    assert refused.returncode == 1
    assert b"does not have Object Lock enabled" in refused.stderr
    assert not target.exists()
