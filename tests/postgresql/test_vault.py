"""A vault whose catalog is in PostgreSQL: made by `mailvault init --catalog`, its password
never in the vault, the corpus archived and read back byte-exact, and an audit chain that
never forks under concurrent writer processes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from mailvault.store import audit, catalog
from mailvault.vault import CATALOG_FILE, Vault
from tests.core.corpus_reading import eml_messages, mbox_messages
from tests.postgresql.conftest import Catalog
from tests.support import run, search_json

WRITERS = 4
ENTRIES_EACH = 40


def _init(vault: Path, pg: Catalog) -> None:
    made = run("init", "--vault", vault, "--catalog", pg.url,
               "--catalog-password-file", pg.password_file)
    assert made.returncode == 0, made.stderr.decode()


def test_init_puts_the_catalog_in_postgresql_without_its_password(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    assert not (vault / CATALOG_FILE).exists()
    settings = (vault / "mailvault.toml").read_text(encoding="utf-8")
    assert pg_catalog.url in settings
    assert pg_catalog.password_file.read_text().strip() not in settings
    verified = run("audit", "verify", "--vault", vault)
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    with Vault.open(vault) as opened:
        assert opened.engine.dialect.name == "postgresql"


def test_init_refuses_a_password_in_the_url(pg_catalog: Catalog, tmp_path: Path) -> None:
    with_password = pg_catalog.url.replace("mailvault@", "mailvault:secret@")
    refused = run("init", "--vault", tmp_path / "vault", "--catalog", with_password)
    assert refused.returncode == 1
    assert b"must not hold a password" in refused.stderr
    assert b"secret" not in refused.stderr
    assert not (tmp_path / "vault" / "keys").exists()


def test_init_refuses_a_database_that_holds_tables(pg_catalog: Catalog,
                                                   tmp_path: Path) -> None:
    _init(tmp_path / "first", pg_catalog)
    refused = run("init", "--vault", tmp_path / "second", "--catalog", pg_catalog.url,
                  "--catalog-password-file", pg_catalog.password_file)
    assert refused.returncode == 1
    assert b"already holds tables" in refused.stderr
    assert not (tmp_path / "second" / "keys").exists()


def _write_entries(vault: Path, writer: int, start: multiprocessing.synchronize.Event) -> None:
    with Vault.open(vault) as opened:
        start.wait(60)
        for n in range(ENTRIES_EACH):
            with opened.engine.begin() as conn:
                audit.record(conn, f"writer-{writer}", "test-write", {"n": n})


def test_the_audit_chain_never_forks_under_concurrent_writers(pg_catalog: Catalog,
                                                              tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        before = audit.head(conn)[0]
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    writers = [context.Process(target=_write_entries, args=(vault, n, start))
               for n in range(WRITERS)]
    for process in writers:
        process.start()
    start.set()
    for process in writers:
        process.join(120)
        assert process.exitcode == 0
    verified = run("audit", "verify", "--vault", vault, "--json")
    assert verified.returncode == 0, verified.stdout.decode()
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        written = [e for e in audit.entries(conn) if e.action == "test-write"]
        assert audit.verify(conn) == []
        head = audit.head(conn)[0]
    assert len(written) == WRITERS * ENTRIES_EACH
    # Every entry chains to the one just before it: numbers without a gap or a repeat.
    assert head >= before + WRITERS * ENTRIES_EACH
    report = json.loads(verified.stdout)
    assert report["ok"] is True and report["entries"] == head


def test_the_corpus_reads_back_byte_exact_from_a_postgresql_catalog(
        corpus: Path, pg_catalog: Catalog, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    box = corpus / "mbox" / "enron-allen-p" / "_sent_mail.mbox"
    imported = run("import", box, corpus / "eml", "--vault", vault)
    assert imported.returncode == 0, imported.stderr.decode()
    expected = {m.sha256: m.raw for m in [*mbox_messages(box), *eml_messages(corpus / "eml")]}
    rows = search_json(vault, "")
    assert sorted(r["sha256"] for r in rows) == sorted(expected)
    with Vault.open(vault) as opened, opened.engine.connect() as conn:
        for row in catalog.iter_messages(conn):
            assert opened.read_raw(row) == expected[row.sha256]
    # The command itself, on a message the index finds by a word of its subject.
    found = search_json(vault, "from:phillip.allen@enron.com")
    assert found
    got = run("get", str(found[0]["id"]), "--raw", "--vault", vault)
    assert got.returncode == 0
    assert got.stdout == expected[found[0]["sha256"]]


def test_a_settings_file_that_lost_its_catalog_is_refused_not_opened_empty(
        pg_catalog: Catalog, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    _init(vault, pg_catalog)
    settings = vault / "mailvault.toml"
    kept = settings.read_text(encoding="utf-8")
    settings.write_text("\n".join(line for line in kept.splitlines()
                                  if not line.startswith("url")) + "\n", encoding="utf-8")

    refused = run("count", "", "--vault", vault)

    assert refused.returncode != 0
    assert "catalog of the vault" in refused.stderr.decode()
    assert not (vault / CATALOG_FILE).exists()  # no new, empty catalog made
    settings.write_text(kept, encoding="utf-8")
    assert run("count", "", "--vault", vault).returncode == 0
