"""What a source covers: which accounts (one mailbox, a list of users, a domain) and which of
their folders (name patterns, SPECIAL-USE: Junk and Trash only when asked for)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from mailvault.config import SyncSettings
from mailvault.errors import InputError
from mailvault.sources import oauth, registry
from mailvault.sources.definitions import EXCLUDED_SPECIAL_USE, SourceSpec
from mailvault.sources.imap import Credentials, Endpoint, Folder
from mailvault.vault import Vault


@dataclass(frozen=True)
class Account:
    """One mailbox to read: the address it is archived under and how to log in to it."""

    address: str
    credentials: Credentials


def endpoint(spec: SourceSpec, settings: SyncSettings) -> Endpoint:
    """Where and how to connect to the source's server."""
    return Endpoint(spec.host, spec.port, spec.tls, spec.ca_file, spec.insecure_skip_verify,
                    settings.timeout_s)


def accounts_of(vault: Vault, spec: SourceSpec) -> list[Account]:
    """The accounts in scope of a source of the vault, with its stored secret."""
    return accounts(spec, registry.secret(vault, spec), vault.settings.sync.timeout_s)


def accounts(spec: SourceSpec, secret: str, timeout_s: float) -> list[Account]:
    """The accounts in scope, each with the login that reaches it (``secret``: the
    password, or an OAuth2 client secret or key). With OAuth2 each mailbox logs in as
    itself, with a token the application's access obtains."""
    if spec.oauth:
        bearer = oauth.bearers(spec, secret, timeout_s)
        addresses = [spec.user] if spec.scope == "mailbox" else users(spec)
        return [Account(a, Credentials(a, bearer=bearer(a))) for a in addresses]
    password = secret
    if spec.scope == "mailbox":
        return [Account(spec.user, Credentials(spec.user, password))]
    return [Account(address, _login_as(spec, address, password)) for address in users(spec)]


def users(spec: SourceSpec) -> list[str]:
    """Addresses of the users file (one a line, '#' comments), limited to the domain if any.

    For scope ``domain`` a bare name is completed with ``@domain``.
    """
    assert spec.users_file is not None
    path = Path(spec.users_file).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"the users file {path} cannot be read: {exc.strerror}.") from exc
    found: list[str] = []
    for line in lines:
        address = line.split("#", 1)[0].strip()
        if not address:
            continue
        if spec.domain:
            if "@" not in address:
                address = f"{address}@{spec.domain}"
            if address.rsplit("@", 1)[1].lower() != spec.domain.lower():
                continue
        if address not in found:
            found.append(address)
    if not found:
        raise InputError(f"the users file {path} names no user"
                         + (f" in {spec.domain}." if spec.domain else "."))
    return found


def _login_as(spec: SourceSpec, address: str, password: str) -> Credentials:
    if spec.auth == "master":
        return Credentials(f"{address}{spec.master_separator}{spec.user}", password)
    return Credentials(spec.user, password, authzid=address)


# Names that mean Junk or Trash on servers that do not announce SPECIAL-USE (RFC 6154).
_NAMED_SPECIAL = {"junk": "\\Junk", "spam": "\\Junk", "junk e-mail": "\\Junk",
                  "junk email": "\\Junk", "bulk mail": "\\Junk", "trash": "\\Trash",
                  "deleted items": "\\Trash", "deleted messages": "\\Trash",
                  "bin": "\\Trash"}


def with_special_use(folders: list[Folder]) -> list[Folder]:
    """The listing, where the server marked no SPECIAL-USE folder at all, with Junk and
    Trash recognised by their usual names (top level or directly under INBOX)."""
    if any(f.special_use for f in folders):
        return folders
    marked = []
    for folder in folders:
        parts = folder.name.split(folder.delimiter)
        top = len(parts) == 1 or (len(parts) == 2 and parts[0].upper() == "INBOX")
        flag = _NAMED_SPECIAL.get(parts[-1].lower()) if top else None
        marked.append(Folder(folder.name, (*folder.attributes, flag), folder.delimiter)
                      if flag else folder)
    return marked


def wanted(folder: Folder, spec: SourceSpec) -> str:
    """Why a folder is left out, or "" when it is in scope."""
    if not folder.selectable:
        return "not selectable"
    special = folder.special_use & set(EXCLUDED_SPECIAL_USE)
    if special - set(spec.special_use):
        return f"SPECIAL-USE \\{min(special)} (add --include-special {min(special).lower()})"
    if spec.include and not any(fnmatchcase(folder.name, p) for p in spec.include):
        return "not matched by --include"
    if any(fnmatchcase(folder.name, p) for p in spec.exclude):
        return "matched by --exclude"
    return ""
