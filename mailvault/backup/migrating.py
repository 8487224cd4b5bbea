"""Moving an embedded vault to a PostgreSQL catalog and/or S3 blobs, into a new vault folder.

The target is a new vault folder holding the source's keys (the same keyring reads the same
sealed records, the same chain key continues the audit log), its settings with ``[catalog]
url`` and/or ``[store] blobs`` added, a copy of the search index, and a marker file
(``migrating.json``) while the move is under way. The catalog is copied table by table
(store/catalog_copy.py: exactly once, resumable); volume files are copied into the target's
tier folders and, with ``--blobs``, uploaded as Object Lock objects by the same step that
uploads a serving node's volumes (compliance/object_lock.py), which removes each local copy
once the catalog names its object. The source vault is only read.

Every step can be run again: a run killed anywhere is finished by the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mailvault.backup import manifest
from mailvault.backup.destination import Destination, check_bucket, check_catalog, write_places
from mailvault.backup.restoring import keep_folders_inside
from mailvault.backup.taking import copy_index
from mailvault.compliance import retention
from mailvault.compliance.integrity import archive_problems
from mailvault.compliance.object_lock import DELETED
from mailvault.config import CONFIG_FILE, load_settings
from mailvault.errors import InputError, MailvaultError
from mailvault.store import (
    audit,
    catalog,
    catalog_copy,
    file_modes,
    schema,
    vault_format,
)
from mailvault.store.audit_head import HEAD_FILE
from mailvault.store.blobs import volume_path
from mailvault.store.objects import SCHEME, read_credentials_file, store_credentials
from mailvault.vault import Vault, open_catalog

MARKER = "migrating.json"
_VERIFY_BATCH = 500
# Past this many, messages that differ are counted, not listed (a bucket gone away).
_LISTED = 50


def check(source: Vault, to: Destination) -> None:
    """Refuse, in one sentence and before anything is made, a destination that cannot be
    used: nothing to move, a target folder holding another vault, a database that cannot be
    reached or holds another catalog, a bucket without Object Lock."""
    if not to.catalog_url and not to.blobs:
        raise InputError("say where the vault moves: --to postgresql://... and/or "
                         "--blobs s3://...")
    if source.settings.catalog.url:
        raise InputError(f"the vault in {source.path} keeps its catalog in PostgreSQL "
                         "already: migrate moves an embedded vault.")
    if to.blobs and source.settings.store.blobs:
        raise InputError(f"the vault in {source.path} keeps its blobs in "
                         f"{source.settings.store.blobs} already.")
    folder = to.folder
    if folder == source.path or folder.is_relative_to(source.path) or \
            source.path.is_relative_to(folder):
        raise InputError(f"the target folder {folder} must be apart from the vault "
                         f"{source.path}.")
    marker = _marker(folder)
    if marker is None and folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} is not empty: migrate into a new folder (or the one an "
                         "unfinished migrate of this vault used).")
    if marker is not None and marker.get("from") != str(source.path):
        raise InputError(f"{folder} is where {marker.get('from')} is being migrated, not "
                         f"{source.path}.")
    if marker is not None and (marker.get("catalog"), marker.get("blobs")) != \
            (to.catalog_url, to.blobs):
        raise InputError(f"the unfinished migrate into {folder} was moving to "
                         f"{marker.get('catalog') or 'a local catalog'} and "
                         f"{marker.get('blobs') or 'local volumes'}: give the same --to and "
                         "--blobs.")
    check_bucket(to)
    # Tables are this migration's when a run of it made them (its copy under way, or done
    # and the rest of the move not yet).
    check_catalog(to, str(source.path), resuming=marker is not None)


def prepare(source: Vault, to: Destination) -> None:
    """Make (or take up again) the target folder: marker, keys, head file, settings."""
    folder = to.folder
    file_modes.make_folder(folder)
    if _marker(folder) is None:
        file_modes.write_replacing(folder / MARKER, json.dumps(
            {"from": str(source.path), "catalog": to.catalog_url, "blobs": to.blobs})
            .encode())
    keys = source.path / manifest.KEYS
    for path in sorted(keys.iterdir()):
        copied = folder / manifest.KEYS / path.name
        if path.is_file() and not path.name.endswith((".tmp", ".part")) and \
                not copied.exists():
            manifest.copy_file(path, copied)
    if to.s3_credentials is not None:
        store_credentials(folder / manifest.KEYS, source.keyring,
                          read_credentials_file(to.s3_credentials))
    if (source.path / HEAD_FILE).exists() and not (folder / HEAD_FILE).exists():
        # The source's head names an entry the copied log holds; the migration's own entry
        # then moves it on.
        manifest.copy_file(source.path / HEAD_FILE, folder / HEAD_FILE)
    if not (folder / CONFIG_FILE).exists():
        _write_settings(source.path / CONFIG_FILE, folder / CONFIG_FILE, to)


def _write_settings(source: Path, target: Path, to: Destination) -> None:
    """The source's settings, its outside folders commented out, with the new places (a
    vault moved to PostgreSQL alone keeps the source's bucket, if it has one)."""
    temporary = target.with_name(target.name + ".part")
    file_modes.write_replacing(temporary, source.read_bytes() if source.exists() else b"")
    keep_folders_inside(temporary, "moved by migrate")
    write_places(temporary, to, "moved by migrate", keep_bucket=not to.blobs)
    os.replace(temporary, target)


def copy_catalog(source: Vault, to: Destination,
                 progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy the catalog into the target's (made by the same schema first); returns the rows
    this run inserted per table. Nothing when an earlier run finished it."""
    engine = open_catalog(to.folder, load_settings(to.folder))
    try:
        if catalog_copy.in_progress(engine) is None and \
                vault_format.format_of(engine) is not None:
            return {}
        tiers = {tier: str(to.folder / manifest.VOLUMES / tier)
                 for tier in ("active", "open", "deep")}

        def place(row: dict[str, Any]) -> dict[str, Any]:
            # A local volume's file moves into the target's tier folder.
            if not row["folder"].startswith((SCHEME, DELETED)):
                row["folder"] = tiers.get(row["tier"], row["folder"])
            return row

        return catalog_copy.copy_catalog(source.engine, engine, str(source.path),
                                         {"volumes": place}, progress)
    finally:
        engine.dispose()


def copy_search_index(source: Vault, to: Destination) -> None:
    """The source's Tantivy index, copied as it is (the target keeps its index locally and
    heals what it lacks, as every vault does)."""
    if (source.path / manifest.INDEX).is_dir():
        copy_index(source.path / manifest.INDEX, to.folder)


def copy_volumes(source: Vault, target: Vault) -> int:
    """Copy each source volume file the target still needs locally; returns how many."""
    copied = 0
    origins = catalog.volume_places(source.engine)
    for volume_id, place in sorted(catalog.volume_places(target.engine).items()):
        if place.startswith((SCHEME, DELETED)):
            continue
        wanted = volume_path(Path(place), volume_id)
        origin = origins.get(volume_id, DELETED)
        if wanted.exists() or origin.startswith((SCHEME, DELETED)):
            continue
        origin_path = volume_path(Path(origin), volume_id)
        if not origin_path.exists():
            continue  # compacted away: nothing points into it
        manifest.copy_file(origin_path, wanted)
        if not origin_path.stat().st_mode & stat.S_IWUSR:
            wanted.chmod(file_modes.READ_ONLY_MODE)
        copied += 1
    return copied


def mismatches(source: Vault, target: Vault) -> list[str]:
    """What differs between the two vaults, one sentence each: row counts per table, every
    message read back through the target against the source's SHA-256, the target's audit
    chain and archive records."""
    problems = []
    before = catalog_copy.row_counts(source.engine)
    # The default retention policy is made from the settings on first use: the target (whose
    # uploads ask for retention) may have made it where the source has not yet.
    with source.engine.connect() as conn:
        if conn.execute(select(schema.retention_policies.c.id).where(
                schema.retention_policies.c.name == retention.DEFAULT)).first() is None:
            before[schema.retention_policies.name] += 1
    retention.ensure_default(target)
    after = catalog_copy.row_counts(target.engine)
    for table, count in before.items():
        if after.get(table) != count:
            problems.append(f"the table {table} holds {count} rows in the source and "
                            f"{after.get(table)} in the target.")
    with source.engine.connect() as conn:
        batch = []
        for row in catalog.iter_messages(conn):
            batch.append((row.id, row.sha256))
            if len(batch) >= _VERIFY_BATCH:
                problems.extend(_read_back(target, batch))
                batch = []
        problems.extend(_read_back(target, batch))
    if len(problems) > _LISTED:
        problems = [*problems[:_LISTED], f"and {len(problems) - _LISTED} more problems."]
    with target.engine.connect() as conn:
        problems.extend(audit.verify(conn, None) + archive_problems(conn))
    return problems


def _read_back(target: Vault, wanted: list[tuple[int, str]]) -> list[str]:
    if not wanted:
        return []
    with target.engine.connect() as conn:
        rows = {row.id: row for row in catalog.messages_by_id(conn, [i for i, _ in wanted])}
    problems = []
    for message_id, sha256 in wanted:
        row = rows.get(message_id)
        if row is None:
            problems.append(f"message {message_id} is not in the target's catalog.")
            continue
        try:
            raw = target.read_raw(row)
        except MailvaultError as exc:
            problems.append(f"message {message_id} cannot be read back from the target: "
                            f"{str(exc).rstrip('.')}.")
            continue
        if hashlib.sha256(raw).hexdigest() != sha256:
            problems.append(f"message {message_id} reads back from the target with other "
                            "bytes than the source archived.")
    return problems


def done(folder: Path) -> None:
    """Remove the marker: the target is a vault like any other from now on."""
    (folder / MARKER).unlink(missing_ok=True)
    file_modes.fsync_folder(folder)


def _marker(folder: Path) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found
