"""Opening and creating a vault for a face: the one place a face gets a Vault from.

Each face holds its vault differently (a command opens it for one command, the web keeps one
for as long as ``serve`` runs), but every opening runs under umask 0o077, so that what SQLite,
Tantivy and the processes started meanwhile create is readable by the owner alone.

Creating a vault takes no principal: before it exists there is no log to write to and nothing
to guard, and whoever creates it holds its keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailvault.store import file_modes
from mailvault.vault import Vault, default_vault_path


@contextmanager
def opened(path: Path | None) -> Iterator[Vault]:
    """The vault at ``path`` (default: $MAILVAULT_VAULT or ./vault), open for the block,
    under umask 0o077 (the umask before is restored after)."""
    with file_modes.owner_only_umask():
        vault = Vault.open(path or default_vault_path())
        try:
            yield vault
        finally:
            vault.close()


def create(path: Path | None, passphrase: str | None = None, catalog_url: str = "",
           catalog_password_file: str = "") -> Path:
    """Create a vault (settings, keyring, catalog, index, volume folders) and return where;
    the keyring is protected by ``passphrase``, or by a key file when there is none. With
    ``catalog_url`` the catalog is that empty PostgreSQL database (its password from
    ``catalog_password_file`` or libpq's environment)."""
    with file_modes.owner_only_umask():
        created = Vault.create(path or default_vault_path(), passphrase, catalog_url,
                               catalog_password_file)
        created.close()
    return created.path


def create_if_missing(path: Path | None) -> Path | None:
    """Create a vault at ``path`` (default: $MAILVAULT_VAULT or ./vault) unless one is there;
    where it was created, or None when there was one already."""
    target = path or default_vault_path()
    if Vault.exists(target):
        return None
    return create(target)
