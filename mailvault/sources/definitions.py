"""What a source is: its server, login, scope, folder filter, date range and schedule.

A ``gateway`` source pulls a gateway mailbox: ``user`` is the mailbox id, ``host`` empty
means this vault's own gateway folder (read directly), a host means a remote gateway's POP3
service. It always deletes from the mailbox what the vault has committed.

A source is defined either with ``mailvault source add`` (kept in the catalog, its password
sealed by the vault's keyring) or as a ``[sources.NAME]`` table in ``mailvault.toml``, whose
password comes from a ``password_file``. Both become the same ``SourceSpec``.

An IMAP source may log in with an OAuth2 access token instead (``auth`` xoauth2 or
oauthbearer; ``oauth.py`` gets the tokens): from a token command, or from a token endpoint
with a client secret (client credentials) or a service-account key (JWT bearer, a token per
mailbox). The secret is sealed like a password, or read from ``secret_file`` in
mailvault.toml. ``tenant`` (a Microsoft 365 tenant) is shorthand for Microsoft's token
endpoint and the Exchange Online scope.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mailvault.errors import ConfigError
from mailvault.sources import cadence

KINDS = ("imap", "pop3", "gateway")
# Sources read as one POP3 maildrop (UIDLs, no folders, no dates).
MAILDROP_KINDS = ("pop3", "gateway")
TLS_MODES = ("implicit", "starttls", "none")
SCOPES = ("mailbox", "users", "domain")
# How an administrator account reaches each user's mailbox, or the OAuth2 SASL mechanism
# (each mailbox then logs in as itself with a token an application's access obtains).
OAUTH_MECHANISMS = {"xoauth2": "XOAUTH2", "oauthbearer": "OAUTHBEARER"}
AUTH_MODES = ("login", "master", "authzid", *OAUTH_MECHANISMS)
# Where OAuth2 tokens come from (see oauth.py).
OAUTH_FLOWS = ("command", "client-credentials", "service-account")
MICROSOFT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
MICROSOFT_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
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
    oauth_flow: str | None = None
    token_command: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    oauth_scope: str | None = None
    secret_file: str | None = None
    origin: str = "catalog"

    @property
    def oauth(self) -> bool:
        """Whether the source logs in with OAuth2 access tokens."""
        return self.auth in OAUTH_MECHANISMS

    @property
    def needs_secret(self) -> bool:
        """Whether a secret is kept for it (a password, a client secret or a key): all but
        a token command, which keeps its own."""
        return self.oauth_flow != "command"

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
    _oauth_defaults(values, label)
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


def _oauth_defaults(values: dict[str, Any], label: str) -> None:
    """Fill in the OAuth2 flow from the settings given, and Microsoft's endpoint and scope
    from ``tenant`` (which is not kept: the endpoint is)."""
    tenant = values.pop("tenant", None)
    if values.get("auth") not in OAUTH_MECHANISMS:
        if tenant:
            raise ConfigError(f"{label}: --tenant is for --auth xoauth2 or oauthbearer.")
        return
    if tenant:
        if values.get("token_url"):
            raise ConfigError(f"{label}: give --tenant or --token-url, not both.")
        if not re.fullmatch(r"[A-Za-z0-9.-]{1,100}", str(tenant)):
            raise ConfigError(f"{label}: a tenant is a domain or a directory id, not "
                              f"{tenant!r}.")
        values["token_url"] = MICROSOFT_TOKEN_URL.format(tenant=tenant)
        values["oauth_scope"] = values.get("oauth_scope") or MICROSOFT_SCOPE
    if not values.get("oauth_flow"):
        if not any(values.get(k) for k in ("token_command", "client_id", "secret_file")):
            raise ConfigError(f"{label}: an OAuth2 login needs a --token-command, a "
                              "--client-id with --tenant or --token-url, or a "
                              "--service-account-file.")
        values["oauth_flow"] = ("command" if values.get("token_command") else
                                "client-credentials" if values.get("client_id") else
                                "service-account")
    if values["oauth_flow"] == "service-account":
        values["oauth_scope"] = values.get("oauth_scope") or GOOGLE_SCOPE


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
                          "(Dovecot's user*admin form), --auth authzid (SASL PLAIN) or an "
                          "application's OAuth2 access (--auth xoauth2|oauthbearer).")
    _check_oauth(spec, label)
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


def _check_oauth(spec: SourceSpec, label: str) -> None:
    oauth_settings = {"token_command": spec.token_command, "token_url": spec.token_url,
                      "client_id": spec.client_id, "oauth_scope": spec.oauth_scope,
                      "secret_file": spec.secret_file, "oauth_flow": spec.oauth_flow}
    if not spec.oauth:
        given = sorted(k for k, v in oauth_settings.items() if v)
        if given:
            raise ConfigError(f"{label}: {', '.join(given)} need --auth xoauth2 or "
                              "oauthbearer.")
        return
    if spec.kind != "imap":
        raise ConfigError(f"{label}: OAuth2 logins are for IMAP sources.")
    if spec.password_file:
        raise ConfigError(f"{label}: an OAuth2 source has no password (its client secret "
                          "or key goes in secret_file).")
    _choice(label, "oauth_flow", spec.oauth_flow or "", OAUTH_FLOWS)
    if spec.oauth_flow == "command":
        if not (spec.token_command or "").strip():
            raise ConfigError(f"{label}: the command flow needs a --token-command.")
        extra = [k for k in ("token_url", "client_id", "secret_file") if oauth_settings[k]]
        if extra:
            raise ConfigError(f"{label}: a token command gets its own tokens; "
                              f"{', '.join(extra)} are for a token endpoint.")
        return
    if spec.token_command:
        raise ConfigError(f"{label}: a token command and a token endpoint were both given.")
    if spec.oauth_flow == "client-credentials" and not (spec.client_id and spec.token_url):
        raise ConfigError(f"{label}: the client-credentials flow needs --client-id and "
                          "--tenant (Microsoft 365) or --token-url.")
    if spec.oauth_flow == "service-account" and spec.client_id:
        raise ConfigError(f"{label}: a service account is named by its key file, not "
                          "--client-id.")
    if spec.token_url:
        url = urlsplit(spec.token_url)
        if url.scheme != "https" and not (url.scheme == "http" and
                                          url.hostname in _LOOPBACK):
            raise ConfigError(f"{label}: the token endpoint must be an https:// URL (plain "
                              f"http only on loopback), not {spec.token_url!r}.")


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
        spec = build({**table, "name": name}, origin="config")
        if spec.needs_secret and not (spec.secret_file if spec.oauth else spec.password_file):
            what = "secret_file (secrets" if spec.oauth else "password_file (passwords"
            raise ConfigError(f"{path}: [sources.{name}] needs a {what} are never written "
                              "in mailvault.toml).")
        specs.append(spec)
    return specs
