"""Opening and creating a vault for a face: the one place a face gets a Vault from.

Each face holds its vault differently (a command opens it for one command, the web keeps one
for as long as ``serve`` runs), but every opening runs under umask 0o077, so that what SQLite,
Tantivy and the processes started meanwhile create is readable by the owner alone.

A vault whose blobs go to a bucket ([store] blobs = s3://...) uploads its sealed volumes when
it is opened (what a killed process left) and again when the block ends (what it wrote).

Creating a vault takes no principal: before it exists there is no log to write to and nothing
to guard, and whoever creates it holds its keys.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailvault.compliance import object_lock
from mailvault.errors import InputError, MailvaultError
from mailvault.store import file_modes, objects
from mailvault.vault import Vault, default_vault_path


@contextmanager
def opened(path: Path | None) -> Iterator[Vault]:
    """The vault at ``path`` (default: $MAILVAULT_VAULT or ./vault), open for the block,
    under umask 0o077 (the umask before is restored after)."""
    with file_modes.owner_only_umask():
        vault = Vault.open(path or default_vault_path())
        try:
            # A vault with its blobs in a bucket: finish what a killed process left local
            # (best effort: a command that only looks must answer with the bucket away).
            with contextlib.suppress(MailvaultError):
                object_lock.upload_pending(vault)
            yield vault
            # What the command wrote goes up before it reports done; a failure here leaves
            # the volumes durable on disk for the next command to send.
            object_lock.upload_pending(vault)
        finally:
            vault.close()


def create(path: Path | None, passphrase: str | None = None, blobs: str = "",
           s3_endpoint: str = "", s3_credentials: Path | None = None, catalog_url: str = "",
           catalog_password_file: str = "", search_backend: str = "") -> Path:
    """Create a vault (settings, keyring, catalog, index, volume folders) and return where;
    the keyring is protected by ``passphrase``, or by a key file when there is none.

    ``blobs`` (s3://BUCKET/PREFIX) keeps sealed volumes in that bucket, which must have
    Object Lock enabled (checked first: nothing is created otherwise). ``s3_credentials``
    names an AWS-style credentials file whose keys are stored sealed with the new keyring;
    without it each command takes them from the environment. With ``catalog_url`` the
    catalog is that empty PostgreSQL database (its password from ``catalog_password_file``
    or libpq's environment), and ``search_backend`` "postgresql" keeps the search index
    there too."""
    credentials = None
    if blobs:
        bucket = objects.Bucket.parse(blobs, s3_endpoint)
        credentials = (objects.read_credentials_file(s3_credentials) if s3_credentials
                       else objects.environment_credentials())
        objects.Objects(bucket, credentials).check()
    elif s3_endpoint or s3_credentials:
        raise InputError("--s3-endpoint and --s3-credentials go with --blobs s3://...")
    with file_modes.owner_only_umask():
        created = Vault.create(path or default_vault_path(), passphrase,
                               {"blobs": blobs, "s3_endpoint": s3_endpoint}, catalog_url,
                               catalog_password_file, search_backend)
        try:
            if s3_credentials is not None and credentials is not None:
                objects.store_credentials(created.path / "keys", created.keyring, credentials)
        finally:
            created.close()
    return created.path


def create_if_missing(path: Path | None) -> Path | None:
    """Create a vault at ``path`` (default: $MAILVAULT_VAULT or ./vault) unless one is there;
    where it was created, or None when there was one already."""
    target = path or default_vault_path()
    if Vault.exists(target):
        return None
    return create(target)
