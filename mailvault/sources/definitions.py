"""What a source is: its server, login, scope, folder filter, date range and schedule.

A ``gateway`` source pulls a gateway mailbox: ``user`` is the mailbox id, ``host`` empty
means this vault's own gateway folder (read directly), a host means a remote gateway's POP3
service. It always deletes from the mailbox what the vault has committed.

A source is defined either with ``mailvault source add`` (kept in the catalog, its password
sealed by the vault's keyring) or as a ``[sources.NAME]`` table in ``mailvault.toml``, whose
password comes from a ``password_file``. Both become the same ``SourceSpec``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mailvault.errors import ConfigError
from mailvault.sources import cadence

KINDS = ("imap", "pop3", "gateway")
# Sources read as one POP3 maildrop (UIDLs, no folders, no dates).
MAILDROP_KINDS = ("pop3", "gateway")
TLS_MODES = ("implicit", "starttls", "none")
SCOPES = ("mailbox", "users", "domain")
# How an administrator account reaches each user's mailbox.
AUTH_MODES = ("login", "master", "authzid")
DEFAULT_PORTS = {("imap", "implicit"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
                 ("pop3", "implicit"): 995, ("pop3", "starttls"): 110, ("pop3", "none"): 110,
                 ("gateway", "implicit"): 995, ("gateway", "starttls"): 110,
                 ("gateway", "none"): 110}
# SPECIAL-USE folders skipped unless asked for (RFC 6154 names without the backslash).
EXCLUDED_SPECIAL_USE = ("Junk", "Trash")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class SourceSpec:
    """One IMAP or POP3 source. ``user`` is the mailbox owner, or the administrator when the
    scope is a list of users or a domain."""

    name: str
    kind: str
    host: str
    port: int
    user: str
    tls: str = "implicit"
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    scope: str = "mailbox"
    users_file: str | None = None
    domain: str | None = None
    auth: str = "login"
    master_separator: str = "*"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    special_use: tuple[str, ...] = ()
    since: date | None = None
    before: date | None = None
    interval: str | None = None
    cron: str | None = None
    delete_after_archive: bool = False
    password_file: str | None = None
    origin: str = "catalog"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, without ``origin`` (where it is kept is not part of it)."""
        data = dataclasses.asdict(self)
        del data["origin"]
        for key in ("since", "before"):
            data[key] = data[key].isoformat() if data[key] else None
        for key in ("include", "exclude", "special_use"):
            data[key] = list(data[key])
        return data


def build(data: dict[str, Any], origin: str = "catalog") -> SourceSpec:
    """A checked SourceSpec from a dict (catalog JSON, a TOML table or CLI options)."""
    values = dict(data)
    label = f"source {values.get('name')!r}"
    known = {f.name for f in dataclasses.fields(SourceSpec)} - {"origin"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{label} has unknown settings: {', '.join(unknown)}.")
    for required in ("name", "kind", "host", "user"):
        if not values.get(required) and not (required == "host" and
                                              values.get("kind") == "gateway"):
            raise ConfigError(f"{label} needs a {required}.")
    kind, tls = values["kind"], values.get("tls") or "implicit"
    if kind == "gateway":
        values["delete_after_archive"] = True
        if not values.get("host"):
            # This vault's own gateway folder: no server, no port, no TLS to speak of.
            values["host"], tls, values["port"] = "", "none", 0
    _choice(label, "kind", kind, KINDS)
    _choice(label, "tls", tls, TLS_MODES)
    _choice(label, "scope", values.get("scope") or "mailbox", SCOPES)
    _choice(label, "auth", values.get("auth") or "login", AUTH_MODES)
    if not _NAME.match(str(values["name"])):
        raise ConfigError(f"{label}: a name is letters, digits, '.', '_' or '-' (up to 64).")
    values["tls"] = tls
    if values.get("port") != 0:
        values["port"] = int(values.get("port") or DEFAULT_PORTS[(kind, tls)])
    for key in ("include", "exclude", "special_use"):
        values[key] = tuple(values.get(key) or ())
    values["special_use"] = tuple(name.strip().strip("\\").capitalize()
                                  for item in values["special_use"] for name in item.split(",")
                                  if name.strip())
    for key in ("since", "before"):
        values[key] = _day(label, key, values.get(key))
    spec = SourceSpec(**values, origin=origin)
    _check(spec, label)
    return spec


def _choice(label: str, key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{label}: {key} must be one of {', '.join(allowed)}, not {value!r}.")


def _day(label: str, key: str, value: object) -> date | None:
    if isinstance(value, date):
        return value
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{label}: {key} must be a date (YYYY-MM-DD), not {value!r}.") from None


def _check(spec: SourceSpec, label: str) -> None:
    if spec.scope != "mailbox" and spec.auth == "login":
        raise ConfigError(f"{label}: reading other users' mailboxes needs --auth master "
                          "(Dovecot's user*admin form) or --auth authzid (SASL PLAIN).")
    if spec.scope != "mailbox" and not spec.users_file:
        raise ConfigError(f"{label}: scope {spec.scope} needs a users file (one address a "
                          "line; IMAP has no way to list a server's accounts).")
    if spec.scope == "domain" and not spec.domain:
        raise ConfigError(f"{label}: scope domain needs --domain.")
    unknown = sorted(set(spec.special_use) - set(EXCLUDED_SPECIAL_USE))
    if unknown:
        raise ConfigError(f"{label}: --include-special takes {', '.join(EXCLUDED_SPECIAL_USE)} "
                          f"(the folders skipped by default), not {', '.join(unknown)}.")
    if spec.interval and spec.cron:
        raise ConfigError(f"{label}: give an interval or a cron expression, not both.")
    cadence.check(spec.interval, spec.cron)
    if spec.kind == "gateway" and spec.scope != "mailbox":
        raise ConfigError(f"{label}: a gateway source reads one mailbox.")
    if spec.kind in MAILDROP_KINDS and (spec.since or spec.before):
        raise ConfigError(f"{label}: POP3 cannot search by date; --since/--before are for "
                          "IMAP.")
    if spec.since and spec.before and spec.since >= spec.before:
        raise ConfigError(f"{label}: --since must come before --before.")
    if spec.kind in MAILDROP_KINDS and (spec.include or spec.exclude or spec.special_use):
        raise ConfigError(f"{label}: POP3 has one folder; folder filters are for IMAP.")
    if spec.delete_after_archive and spec.kind not in MAILDROP_KINDS:
        raise ConfigError(f"{label}: deleting after archiving exists for POP3 only "
                          "(IMAP sources are strictly read-only).")


def from_toml(vault_dir: Path) -> list[SourceSpec]:
    """The ``[sources.NAME]`` tables of the vault's mailvault.toml."""
    path = vault_dir / "mailvault.toml"
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}.") from exc
    tables = data.get("sources", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: [sources] must hold one table per source.")
    specs = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [sources.{name}] must be a table.")
        if not table.get("password_file"):
            raise ConfigError(f"{path}: [sources.{name}] needs a password_file (passwords "
                              "are never written in mailvault.toml).")
        specs.append(build({**table, "name": name}, origin="config"))
    return specs
