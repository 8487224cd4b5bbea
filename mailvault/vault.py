"""The Vault: one folder holding config, keyring, catalog, index and volumes, wired together.

Nothing is global: every command, server and test opens the vault it needs and passes it on.

    VAULT/
      mailvault.toml        settings (see docs/configuration.md)
      keys/                 keyring.json (+ master.key unless a passphrase is used),
                            audit-chain.key (the audit log's HMAC key, sealed),
                            export-signing.key (the Ed25519 key exports are signed with)
      catalog.sqlite        the catalog (WAL), unless [catalog] url puts it in PostgreSQL
      audit-head.json       the audit log's newest committed entry, sealed (audit_head.py)
      index/                the Tantivy index (derived: can be rebuilt), unless [search]
                            backend puts it in the PostgreSQL catalog's database
      locks/                export-ID.lock: held while an export job runs
      exports/              exports started from the web application
      volumes/active/       volume files of the Active tier (open/, deep/ likewise, unless
                            [tiers] puts a tier's folder elsewhere)

Every file in it is readable by the owner alone and every folder is 0700 (see
store/file_modes.py); opening a vault tightens whatever is looser.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from mailvault.config import CONFIG_FILE, Settings, load_settings
from mailvault.errors import (
    ConfigError,
    IntegrityError,
    MailvaultError,
    StoreError,
    VaultError,
)
from mailvault.search import indexing
from mailvault.search.backend import SearchBackend
from mailvault.search.index import SearchIndex
from mailvault.store import (
    audit_chain,
    catalog,
    database,
    dictionaries,
    file_modes,
    layout,
    settings_audit,
    vault_format,
)
from mailvault.store.audit_head import HEAD_FILE
from mailvault.store.blob_store import BlobStore
from mailvault.store.blobs import KIND_MESSAGE, KIND_PART, VolumeBlobStore, volume_path
from mailvault.store.catalog import MessageRow
from mailvault.store.crypto import create_keyring, export_signing_key, open_keyring
from mailvault.store.objects import (
    SCHEME,
    Bucket,
    Credentials,
    ObjectBlobStore,
    Objects,
    ObjectVolumes,
    environment_credentials,
    read_credentials_file,
    stored_credentials,
)
from mailvault.store.volumes import Volumes

CATALOG_FILE = "catalog.sqlite"
SEARCH_TANTIVY = "tantivy"
SEARCH_POSTGRESQL = "postgresql"
TIERS = ("active", "open", "deep")

_DEFAULT_TOML = """\
# mailvault settings: every setting, its default and meaning are in docs/configuration.md.
# Environment variables MAILVAULT_<SECTION>_<NAME> override what is written here.

[ingest]
# max_message_mb = 150

[store]
# volume_max_mb = 1024
"""


class Vault:
    """An open vault. Use ``Vault.create`` for a new one, ``Vault.open`` for an existing one."""

    def __init__(self, path: Path, settings: Settings, passphrase: str | None = None) -> None:
        self.path = path
        self.settings = settings
        self.engine = open_catalog(path, settings)
        try:
            if vault_format.format_of(self.engine) is None:
                if settings.catalog.url:
                    # Never made here: an empty database is more likely a wrong URL than a
                    # vault whose creation stopped (which 'init' finishes).
                    raise VaultError(f"the catalog database {settings.catalog.url} is empty: "
                                     f"check [catalog] url in {path / CONFIG_FILE}.")
                # A vault whose creation stopped before its catalog was made.
                vault_format.create(self.engine)
            # Before anything else is read: a newer vault is never half-read.
            vault_format.check(self.engine, path)
            self.keyring = open_keyring(path / "keys", passphrase)
        except MailvaultError:
            self.engine.dispose()
            raise
        # The audit chain first: every entry, the settings record included, is keyed.
        self.audit_chain = audit_chain.attach(self.engine, self.keyring, path / "keys",
                                              path / HEAD_FILE)
        settings_audit.record_changes(self.engine, settings)
        audit_chain.settle(self.engine, self.audit_chain)
        self._volume_folders = catalog.volume_folders(self.engine)
        self._volume_places: dict[int, str] = {}
        self.blobs: BlobStore = self._blob_store()
        try:
            self.index: SearchBackend = self._search_backend()
        except MailvaultError:
            self.blobs.close()
            self.engine.dispose()
            raise
        # Why the index is behind the catalog ('' when it is not known to be): the last
        # failed index write or heal of this process. `status` shows it.
        self.index_problem = ""

    @classmethod
    def create(cls, path: Path, passphrase: str | None = None,
               store: dict[str, str] | None = None, catalog_url: str = "",
               catalog_password_file: str = "", search_backend: str = "") -> Vault:
        """Make a new vault folder (it must not hold a vault already). ``store`` puts these
        [store] settings in its mailvault.toml (the bucket of blobs in S3). ``catalog_url``
        puts its catalog in that (empty) PostgreSQL database instead of the vault folder; the
        password comes from ``catalog_password_file`` or libpq's environment, never the URL.
        ``search_backend`` "postgresql" puts the search index in that database too."""
        path = path.expanduser().resolve()
        if (path / CATALOG_FILE).exists() or (path / "keys").exists():
            raise VaultError(f"{path} already holds a vault.")
        if catalog_url:
            database.check_url(catalog_url)
        if search_backend not in ("", SEARCH_TANTIVY, SEARCH_POSTGRESQL):
            raise ConfigError(f"the search backend is tantivy or postgresql, not "
                              f"{search_backend!r}.")
        if search_backend == SEARCH_POSTGRESQL and not catalog_url:
            raise ConfigError("the postgresql search backend needs the catalog in PostgreSQL "
                              "(--catalog).")
        try:
            file_modes.make_folder(path)
            if not (path / CONFIG_FILE).exists():
                file_modes.write_replacing(path / CONFIG_FILE, _default_toml(
                    store or {}, catalog_url, catalog_password_file,
                    search_backend).encode())
        except OSError as exc:
            raise VaultError(f"a vault cannot be created in {path}: {exc.strerror}.") from exc
        engine = open_catalog(path, load_settings(path))
        try:
            if engine.dialect.name == database.POSTGRESQL and \
                    vault_format.format_of(engine) is not None:
                raise VaultError(f"the catalog database {engine.url.database} already holds "
                                 "tables: give a new, empty database.")
            try:
                create_keyring(path / "keys", passphrase)
            except OSError as exc:
                raise VaultError(f"a vault cannot be created in {path}: "
                                 f"{exc.strerror}.") from exc
            vault_format.create(engine)
        finally:
            engine.dispose()
        return cls.open(path, passphrase)

    @staticmethod
    def exists(path: Path) -> bool:
        """Whether ``path`` holds a vault (its keys folder)."""
        return (path.expanduser() / "keys").is_dir()

    @classmethod
    def open(cls, path: Path, passphrase: str | None = None) -> Vault:
        """Open an existing vault and heal the index if it is behind the catalog (a crash, a
        full disk, an older copy of the index folder). Healing is best effort: a vault on a
        full disk still opens for reading, with ``index_problem`` saying why."""
        path = path.expanduser().resolve()
        if not cls.exists(path):
            raise VaultError(f"there is no vault in {path} (create one with 'mailvault init').")
        settings = load_settings(path)
        if (not settings.catalog.url and not (path / CATALOG_FILE).exists()
                and (path / HEAD_FILE).exists()):
            # The audit log has entries, so the catalog existed: opening would make a new,
            # empty one and the archive would look empty (a mailvault.toml that lost its
            # [catalog] url, or a deleted catalog.sqlite).
            raise VaultError(f"the catalog of the vault in {path} is missing: there is no "
                             f"{CATALOG_FILE} and mailvault.toml names no [catalog] url; put "
                             "the catalog (or that setting) back, or restore a backup.")
        for folder in (path, *_tier_folders_outside(path, settings)):
            file_modes.tighten(folder)
        # Files replaced whole (the config, the status file, disposition reports) sit in the
        # vault folder or one below: a writer killed mid-way left its temporary there.
        for folder in (path, *(child for child in path.iterdir() if child.is_dir())):
            file_modes.remove_left_temporaries(folder)
        vault = cls(path, settings, passphrase)
        # heal() leaves the index to a running `serve` that holds its writer: a command that
        # opens the vault meanwhile does not wait for the writer. Healing may take the writer;
        # it is let go afterwards, so that an open vault (a reader, a test's fixture) never
        # keeps another process or another Vault from writing. Writers take it again.
        vault.heal_index()
        vault.index.close()
        return vault

    def close(self) -> None:
        """Flush and release files and the index writer; move the audit head file forward."""
        self.blobs.close()
        self.index.close()
        audit_chain.settle(self.engine, self.audit_chain)
        self.engine.dispose()
        # Tantivy creates its files with the process's umask: a library caller with a loose
        # one leaves them owner-only at least from here on (the CLI runs under 0o077).
        if isinstance(self.index, SearchIndex):
            file_modes.tighten(self.index.path)

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- storage ---------------------------------------------------------------------------

    def _search_backend(self) -> SearchBackend:
        """The full-text index: a Tantivy folder in the vault, or ([search] backend =
        "postgresql") tables in the catalog's PostgreSQL database."""
        backend = self.settings.search.backend
        if backend == SEARCH_POSTGRESQL:
            if self.engine.dialect.name != database.POSTGRESQL:
                raise ConfigError("[search] backend = \"postgresql\" needs the catalog in "
                                  "PostgreSQL ([catalog] url).")
            # Here, not at the top: psycopg and the backend cost every command's start
            # (60-90 ms) and only vaults searched in PostgreSQL use them.
            from mailvault.search.postgresql_index import PostgresIndex

            return PostgresIndex(self.engine)
        if backend != SEARCH_TANTIVY:
            raise ConfigError(f"[search] backend is tantivy or postgresql, not {backend!r}.")
        return SearchIndex(self.path / "index", self.settings.search.index_heap_mb,
                           self.settings.search.query_threads)

    def tier_folder(self, tier: str) -> Path:
        """Where a tier's volume files live ([tiers] <tier>_folder, or inside the vault)."""
        configured = getattr(self.settings.tiers, f"{tier}_folder", "")
        return Path(configured).expanduser() if configured else self.path / "volumes" / tier

    def _blob_store(self) -> BlobStore:
        """Local volumes, or local volumes uploaded to a bucket ([store] blobs = s3://...)."""
        store = self.settings.store
        cached = self.settings.tiers.deep_cache_chunks
        if not store.blobs:
            return VolumeBlobStore(self.keyring, self._volumes, self._dictionary, cached)
        bucket = Bucket.parse(store.blobs, store.s3_endpoint, store.s3_region,
                              store.s3_lock_mode)
        credentials: Credentials | None
        if store.s3_credentials_file:
            credentials = read_credentials_file(Path(store.s3_credentials_file).expanduser())
        else:
            credentials = (stored_credentials(self.path / "keys", self.keyring)
                           or environment_credentials())
        self._volume_places = catalog.volume_places(self.engine)
        return ObjectBlobStore(self.keyring, self._volumes, Objects(bucket, credentials),
                               self._dictionary, cached)

    def _object_of(self, volume_id: int, refresh: bool) -> str | None:
        """The URL of the object holding a volume (None while it is a local file); ``refresh``
        asks the catalog again (another node, or this one, may have uploaded it since)."""
        if refresh:
            self._volume_places = catalog.volume_places(self.engine)
        place = self._volume_places.get(volume_id, "")
        return place if place.startswith(SCHEME) else None

    def _dictionary(self, dict_id: int) -> bytes:
        return dictionaries.load(self.engine, self.keyring, dict_id)

    def _volumes(self, tier: str) -> Volumes:
        def new_id(folder: Path) -> int:
            volume_id = catalog.new_volume(self.engine, tier, folder)
            self._volume_folders[volume_id] = folder
            return volume_id

        def path_of(volume_id: int) -> Path:
            folder = self._volume_folders.get(volume_id)
            if folder is None:
                self._volume_folders.update(catalog.volume_folders(self.engine))
                folder = self._volume_folders.get(volume_id)
            if folder is None:
                raise StoreError(f"volume {volume_id} is not in the catalog.")
            return volume_path(folder, volume_id)

        current = catalog.last_volume(self.engine, tier)
        if isinstance(self.blobs, ObjectBlobStore):
            return ObjectVolumes(self.tier_folder(tier),
                                 self.settings.store.s3_object_mb * 1024 * 1024, path_of, new_id,
                                 current, self._object_of, self.blobs.objects)
        return Volumes(self.tier_folder(tier), self.settings.store.volume_max_mb * 1024 * 1024,
                       path_of, new_id, current)

    def read_raw(self, row: MessageRow) -> bytes:
        """The exact bytes received for a message, checked against its SHA-256."""
        return self.read_stored(row).raw

    def read_stored(self, row: MessageRow) -> StoredMessage:
        """A message's raw bytes and the blobs they are stored as, checked against its SHA-256
        (every read of message bytes goes through here, whatever the tier)."""
        skeleton = self.blobs.read(row.tier, row.location, KIND_MESSAGE,
                                   bytes.fromhex(row.sha256))
        hashes = layout.part_hashes(skeleton)
        parts: dict[bytes, bytes] = {}
        if hashes:
            with self.engine.connect() as conn:
                where = catalog.message_parts(conn, row.id)

            def get_part(digest: bytes) -> bytes:
                entry = where.get(digest.hex())
                if entry is None:
                    raise IntegrityError(f"message {row.id} refers to a part the catalog "
                                         "does not know.")
                if digest not in parts:
                    parts[digest] = self.blobs.read(entry[0], entry[1], KIND_PART, digest)
                return parts[digest]

            try:
                raw = layout.join(skeleton, get_part)
            except ValueError as exc:
                raise IntegrityError(f"message {row.id} cannot be rebuilt: {exc}.") from exc
        else:
            raw = layout.join(skeleton, lambda _d: b"")
        if hashlib.sha256(raw).hexdigest() != row.sha256:
            raise IntegrityError(f"message {row.id} does not match its SHA-256.")
        return StoredMessage(raw=raw, skeleton=skeleton, parts=parts)

    def export_signing_key(self) -> bytes:
        """The Ed25519 private key (32 bytes) this vault signs its exports with."""
        return export_signing_key(self.path / "keys", self.keyring)

    # -- index -----------------------------------------------------------------------------

    def heal_index(self) -> int:
        """Index what the catalog has and the index lacks; returns how many documents.

        Never raises for an index or catalog that cannot be written (a full disk, a broken
        message): the reason goes to ``index_problem`` and the next heal tries again."""
        try:
            done = indexing.heal(self)
        except MailvaultError as exc:
            self.index_problem = str(exc)
            return 0
        self.index_problem = ""
        return done


@dataclass(frozen=True)
class StoredMessage:
    """A message as read back and checked: its raw bytes, its skeleton and its parts."""

    raw: bytes
    skeleton: bytes
    parts: dict[bytes, bytes]


def open_catalog(path: Path, settings: Settings) -> Engine:
    """The engine of the catalog of the vault at ``path``: [catalog] url, or its SQLite file."""
    return database.open_engine(path / CATALOG_FILE, settings.catalog.url,
                                settings.catalog.password_file)


def _default_toml(store: dict[str, str], catalog_url: str, password_file: str,
                  search_backend: str = "") -> str:
    """A new vault's mailvault.toml: the defaults commented, where its blobs are kept,
    where its catalog is and which search backend it has."""
    # JSON strings are TOML basic strings for what a URL or a path holds.
    lines = "".join(f"{name} = {json.dumps(value)}\n" for name, value in store.items() if value)
    text = _DEFAULT_TOML.replace("[store]\n", "[store]\n" + lines)
    if not catalog_url:
        return text
    catalog_lines = ["", "[catalog]", f"url = {json.dumps(catalog_url)}"]
    if password_file:
        catalog_lines.append(
            f"password_file = {json.dumps(str(Path(password_file).expanduser()))}")
    if search_backend:
        catalog_lines += ["", "[search]", f"backend = {json.dumps(search_backend)}"]
    return text + "\n".join(catalog_lines) + "\n"


def _tier_folders_outside(path: Path, settings: Settings) -> list[Path]:
    """The tier folders [tiers] puts outside the vault folder (they hold volumes too)."""
    folders = []
    for tier in TIERS:
        configured = getattr(settings.tiers, f"{tier}_folder", "")
        if configured:
            folder = Path(configured).expanduser().resolve()
            if folder.is_dir() and not folder.is_relative_to(path):
                folders.append(folder)
    return folders


def default_vault_path() -> Path:
    """The vault folder from MAILVAULT_VAULT, or ./vault."""
    return Path(os.environ.get("MAILVAULT_VAULT", "vault"))
