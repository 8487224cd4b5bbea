"""Where sources are kept: the catalog's ``sources`` table (the secret sealed with the vault's
keyring: a password, an OAuth2 client secret or service-account key) and ``[sources.NAME]``
tables of mailvault.toml (the secret read from its file when needed). Adding and removing are
audited; secrets never reach the audit log, the screen or an exception message."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import delete, insert, select

from mailvault.errors import ConfigError, InputError, NotFoundError
from mailvault.password_files import read_key_file, read_password_file
from mailvault.sources.definitions import SourceSpec, build, from_toml
from mailvault.store import audit, catalog, schema
from mailvault.vault import Vault


def _label(name: str) -> str:
    return f"source-password:{name}"


def add(vault: Vault, spec: SourceSpec, secret: str, actor: str) -> None:
    """Keep a new source in the catalog; its secret (password, client secret or key) sealed
    by the keyring. A source whose token command gets its tokens keeps none."""
    if any(s.name == spec.name for s in all_sources(vault)):
        raise ConfigError(f"a source named {spec.name!r} exists already.")
    if spec.needs_secret and not secret:
        raise InputError(f"the {secret_name(spec)} is empty.")
    sealed = vault.keyring.wrap_secret(secret.encode(), _label(spec.name)) \
        if spec.needs_secret else ""
    with vault.engine.begin() as conn:
        conn.execute(insert(schema.sources).values(
            name=spec.name, kind=spec.kind, spec=json.dumps(spec.to_json()), secret=sealed,
            created_at=catalog.now()))
        audit.record(conn, actor, "source-add", {"name": spec.name, "kind": spec.kind,
                                                 "host": spec.host, "user": spec.user,
                                                 "scope": spec.scope})


def remove(vault: Vault, name: str, actor: str) -> None:
    """Forget a catalog source and its sync state (archived mail stays, of course)."""
    spec = get(vault, name)
    if spec.origin == "config":
        raise ConfigError(f"source {name!r} is defined in mailvault.toml: remove it there.")
    with vault.engine.begin() as conn:
        conn.execute(delete(schema.sources).where(schema.sources.c.name == name))
        conn.execute(delete(schema.source_folders).where(schema.source_folders.c.source == name))
        conn.execute(delete(schema.source_seen).where(schema.source_seen.c.source == name))
        audit.record(conn, actor, "source-remove", {"name": name})


def all_sources(vault: Vault) -> list[SourceSpec]:
    """Every source: the catalog's, then mailvault.toml's, by name."""
    with vault.engine.connect() as conn:
        rows = conn.execute(select(schema.sources.c.spec)).all()
    specs = [build(json.loads(r.spec)) for r in rows] + from_toml(vault.path)
    return sorted(specs, key=lambda s: s.name)


def get(vault: Vault, name: str) -> SourceSpec:
    """One source by name."""
    for spec in all_sources(vault):
        if spec.name == name:
            return spec
    raise NotFoundError(f"there is no source named {name!r} (see 'mailvault source list').")


def secret_name(spec: SourceSpec) -> str:
    """What the source's secret is, in words."""
    if spec.oauth_flow == "service-account":
        return "service-account key"
    return "client secret" if spec.oauth else "password"


def secret(vault: Vault, spec: SourceSpec) -> str:
    """The source's secret: unsealed from the catalog, or read from its file ("" for a
    token command)."""
    if not spec.needs_secret:
        return ""
    if spec.password_file:
        return read_password_file(Path(spec.password_file))
    if spec.secret_file:
        path = Path(spec.secret_file)
        return read_key_file(path) if spec.oauth_flow == "service-account" \
            else read_password_file(path)
    with vault.engine.connect() as conn:
        sealed = conn.execute(select(schema.sources.c.secret)
                              .where(schema.sources.c.name == spec.name)).scalar()
    if not sealed:
        raise ConfigError(f"source {spec.name!r} has no stored {secret_name(spec)}.")
    return vault.keyring.unwrap_secret(sealed, _label(spec.name)).decode()

