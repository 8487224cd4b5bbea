"""Settings: each one declared once, with its type, default and help.

A vault folder holds ``mailvault.toml``; every setting can also come from the environment as
``MAILVAULT_<SECTION>_<NAME>`` (environment wins). ``docs/configuration.md`` is generated from
these declarations (``python -m mailvault.config``), and a test fails when it falls out of date.

Compliance settings (four-eyes, the default retention, who may hand mail to the SMTP endpoint,
what the milter does on failure) are declared with a ``stricter`` rule: a change of them is
written to the audit log when a vault opens, and the environment may only make them stricter.
Weakening one takes an edit of ``mailvault.toml``, which the audit log then records.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailvault.errors import ConfigError

CONFIG_FILE = "mailvault.toml"
# Tables read by their own module rather than declared here: [sources.NAME] (one table per
# IMAP/POP3 source, read by mailvault/sources/definitions.py).
FREE_SECTIONS = ("sources",)


# A compliance setting's rule: is ``new`` at least as strict as ``old``?
Stricter = Callable[[Any, Any], bool]


def setting(default: Any, help: str, stricter: Stricter | None = None) -> Any:
    """Declare one setting: its default and the sentence that documents it; ``stricter``
    makes it a compliance setting (audited, and the environment may only tighten it)."""
    metadata = {"help": help, "stricter": stricter}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def at_least(old: Any, new: Any) -> bool:
    """Larger is stricter (a longer period; true over false)."""
    return bool(new >= old)


def at_most(old: Any, new: Any) -> bool:
    """Smaller is stricter (false over true: a permission left off)."""
    return bool(new <= old)


def ranked(*order: str) -> Stricter:
    """Later in ``order`` is stricter."""
    def stricter(old: Any, new: Any) -> bool:
        return new in order and old in order and order.index(new) >= order.index(old)
    return stricter


def unchanged(old: Any, new: Any) -> bool:
    """Neither way is stricter: only the same value is allowed."""
    return bool(old == new)


def within_networks(old: list[str], new: list[str]) -> bool:
    """Every network of ``new`` lies inside one of ``old``; an empty list allows any."""
    if not old:
        return True
    try:
        allowed = [ipaddress.ip_network(n, strict=False) for n in old]
        wanted = [ipaddress.ip_network(n, strict=False) for n in new]
    except ValueError:
        return False
    return bool(wanted) and all(any(_inside(w, a) for a in allowed) for w in wanted)


def _inside(inner: ipaddress.IPv4Network | ipaddress.IPv6Network,
            outer: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def within_list(old: list[str], new: list[str]) -> bool:
    """A non-empty subset of ``old`` (an empty list has its own, wider meaning)."""
    if not old:
        return not new
    return bool(new) and {v.lower() for v in new} <= {v.lower() for v in old}


def subset(old: list[str], new: list[str]) -> bool:
    """Fewer is stricter: ``new`` names nothing that ``old`` does not (empty allows nothing)."""
    return {v.lower() for v in new} <= {v.lower() for v in old}


@dataclass
class CatalogSettings:
    """Where the catalog lives: the SQLite file in the vault folder, or PostgreSQL."""

    url: str = setting(
        "", "Empty: the SQLite file catalog.sqlite in the vault folder. Else the PostgreSQL "
        "database of the catalog, postgresql://USER@HOST:PORT/DATABASE (set by 'mailvault "
        "init --catalog'; never with a password in it).")
    password_file: str = setting(
        "", "A file whose first line is the PostgreSQL password; empty: libpq's PGPASSWORD "
        "or ~/.pgpass (PGPASSFILE).")


@dataclass
class StoreSettings:
    """Where and how blobs are kept."""

    volume_max_mb: int = setting(
        1024, "A volume file is sealed (read-only) once it reaches this size."
    )
    compression_level: int = setting(3, "zstd level for Active-tier blobs (fast, random access).")
    dictionary_kb: int = setting(
        64,
        "Size of the zstd dictionary the Active tier trains on the first batch of at least "
        "64 new messages (0: none); small messages compress far better with it.",
    )
    part_min_bytes: int = setting(
        8192,
        "MIME leaf parts at least this large are stored once as their own blob "
        "(attachment single-instance storage).",
    )
    blobs: str = setting(
        "",
        "Where sealed volumes go: empty keeps them on local disk; s3://BUCKET/PREFIX uploads "
        "each as an Object Lock object to an S3-compatible bucket (docs/s3.md).",
    )
    s3_endpoint: str = setting(
        "", "The S3 endpoint URL (empty: AWS); for MinIO, Ceph or another compatible store."
    )
    s3_region: str = setting("us-east-1", "The bucket's region.")
    s3_lock_mode: str = setting(
        "compliance",
        "Object Lock mode of uploaded objects: compliance (nobody can shorten or lift it) or "
        "governance (an account with the bypass permission can).",
    )
    s3_object_mb: int = setting(
        8, "With s3:// blobs, a volume is sealed and uploaded as one object at this size."
    )
    s3_upload_after_s: int = setting(
        600,
        "With s3:// blobs, under serve a volume that has taken mail for this many seconds is "
        "sealed and uploaded even if smaller than s3_object_mb: a quiet node's mail reaches "
        "the bucket within about this time.",
    )
    s3_credentials_file: str = setting(
        "",
        "An AWS-style credentials file read at each start (empty: the credentials sealed in "
        "keys/ by 'init --s3-credentials', else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).",
    )


@dataclass
class IngestSettings:
    """How messages are brought in."""

    max_message_mb: int = setting(
        150, "Messages larger than this are refused (recorded as a failure with the reason)."
    )
    workers: int = setting(
        0, "Worker processes that parse and extract text; 0 means one per CPU core."
    )
    batch_size: int = setting(
        500, "Messages archived per batch: one fsync and one catalog transaction per batch."
    )


@dataclass
class SearchSettings:
    """Attachment text extraction and the full-text index."""

    extract_max_mb: int = setting(
        25, "Attachments larger than this are stored and named but their text is not extracted."
    )
    extract_timeout_s: float = setting(
        10.0, "Time allowed to extract text from one attachment before giving up on it."
    )
    extract_max_chars: int = setting(
        2_000_000, "Text kept from one attachment for the index; the rest is cut off."
    )
    max_text_chars: int = setting(
        4_000_000, "Text one message may give the index (body, attachments and forwarded "
        "messages together); the rest is cut off and a parse defect says so."
    )
    index_heap_mb: int = setting(64, "Memory the index writer may use before it flushes.")
    query_threads: int = setting(
        0, "Threads one search may use over a large index (250,000 messages or more): its "
        "messages are split by id into that many parts searched at once. 0: one per core "
        "(at most 4); 1: never split. A search beside another one of the same index is "
        "never split (the cores are busy already).")
    backend: str = setting(
        "tantivy", "Where the full-text index lives: tantivy (a folder in the vault, the "
        "default) or postgresql (tables in the catalog's database; needs [catalog] url; set "
        "by 'mailvault init --search-backend postgresql', docs/postgresql.md).")
    node_absence_days: float = setting(
        7.0, "How long the reindex log keeps changes for a node's index that has not been "
        "seen (several serve nodes on one PostgreSQL catalog); a node away longer rebuilds "
        "its index when it comes back.")


@dataclass
class SyncSettings:
    """How IMAP and POP3 sources are read (sources themselves: [sources.NAME] tables)."""

    connections: int = setting(4, "Accounts read in parallel, one connection each.")
    fetch_batch: int = setting(200, "Messages asked for in one IMAP UID FETCH or POP3 run.")
    fetch_batch_mb: int = setting(
        32, "Bytes asked for in one fetch, by the sizes the server reports (bounds memory)."
    )
    retries: int = setting(
        3, "Times a dropped connection is reopened (with doubling backoff) before giving up."
    )
    backoff_s: float = setting(1.0, "Wait before the first reconnection; doubled each time.")
    timeout_s: float = setting(60.0, "Socket timeout for connecting to and reading a server.")


@dataclass
class TierSettings:
    """How the Active, Open and Deep tiers pack their blobs, and when mail moves between them."""

    active_folder: str = setting(
        "", "Folder of the Active tier's volume files (empty: VAULT/volumes/active).")
    open_folder: str = setting(
        "", "Folder of the Open tier's volume files, another disk say (empty: VAULT/volumes/open).")
    deep_folder: str = setting(
        "", "Folder of the Deep tier's volume files (empty: VAULT/volumes/deep).")
    open_level: int = setting(
        15, "zstd level of Open-tier blobs (each still read on its own; with the dictionary, "
        "19 saves under 1% more at twice the time).")
    open_dictionary_kb: int = setting(
        112, "Size of the zstd dictionary trained for the Open tier on its first move "
        "(0: no dictionary).")
    deep_level: int = setting(19, "zstd level of Deep-tier solid chunks.")
    deep_chunk_mb: int = setting(
        4, "Messages moved to Deep are compressed together in chunks of about this size.")
    deep_cache_chunks: int = setting(
        8, "Decompressed Deep chunks kept in memory per process, so neighbours read fast.")
    move_batch: int = setting(
        500, "Messages per committed step of a tier move (the unit a killed move redoes).")
    open_after_days: int = setting(
        0, "Lifecycle: Active mail older than this moves to Open (0: never).")
    deep_after_days: int = setting(
        0, "Lifecycle: Active or Open mail older than this moves to Deep (0: never).")
    lifecycle_age_from: str = setting(
        "archived", "Lifecycle age counted from 'archived' (archive date) or 'date' "
        "(the message's Date header).")
    lifecycle_every_minutes: int = setting(
        60, "How often serve applies the lifecycle rules and resumes unfinished moves.")
    compact_min_free: float = setting(
        0.25, "Compaction (each lifecycle pass, and 'tier compact') rewrites a sealed volume once "
        "this share of its bytes was released by moves or disposal (above 1: never).")


@dataclass
class RetentionSettings:
    """How long mail is kept, and how it is disposed of."""

    default_days: int = setting(
        2557, "Period of the default policy when a vault first needs one (2557 days: 7 years); "
        "change it later with 'mailvault retention default'.", at_least)
    default_from: str = setting(
        "date", "The default policy counts from 'date' (the message's Date) or 'archived'.",
        unchanged)
    four_eyes: bool = setting(
        False, "Disposition needs two people: one proposes a run, another approves it.",
        at_least)


@dataclass
class SmtpSettings:
    """The SMTP journal endpoint that `mailvault serve` runs."""

    listen: list[str] = setting(
        ["127.0.0.1:2525"],
        "HOST:PORT addresses for SMTP with optional STARTTLS (25 in production).",
    )
    tls_listen: list[str] = setting(
        [], "HOST:PORT addresses for implicit TLS (SMTPS, usually port 465); needs tls_cert."
    )
    tls_cert: str = setting("", "PEM certificate (chain) for STARTTLS and implicit TLS.")
    tls_key: str = setting("", "PEM private key of tls_cert.")
    require_tls: bool = setting(False, "Refuse mail (530) until the client has started TLS.",
                                at_least)
    auth: str = setting(
        "off",
        "SMTP AUTH (PLAIN, LOGIN; only after TLS): off, optional or required. "
        "Users: `mailvault smtp-user add`.",
        ranked("off", "optional", "required"),
    )
    auth_attempts: int = setting(
        10, "Failed AUTH attempts one client address (an IPv6 client: its /64) may make per "
        "auth_window_minutes; after that AUTH is answered 454 until the window has passed.")
    auth_window_minutes: int = setting(15, "The window of auth_attempts.")
    allow: list[str] = setting(
        [], "CIDRs that may connect (others get 554 at connect); empty lets any address connect.",
        within_networks,
    )
    recipients: list[str] = setting(
        [],
        "Accepted journal recipients: addresses or @domains (anything else gets 550); empty "
        "accepts any recipient, but only from loopback clients.",
        within_list,
    )
    max_message_mb: int = setting(
        100, "Largest message accepted (SIZE extension; 552 above it; capped by [ingest])."
    )
    max_connections: int = setting(500, "Concurrent sessions; one more is told 421 and closed.")
    max_connections_per_client: int = setting(
        50,
        "Concurrent sessions from one client address (an IPv6 client: its /64); one more is "
        "told 421. Leave room for the journaling MTA's own concurrency (Postfix: 20).",
    )
    connection_reserve_percent: int = setting(
        10,
        "Share of max_connections kept for client addresses that hold no session yet, so "
        "clients from a few addresses can never take every slot.",
    )
    timeout_s: float = setting(120.0, "A client silent this long is disconnected.")
    command_deadline_s: float = setting(
        60.0,
        "A command line must be complete this long after its first byte arrived, or the client "
        "is told 421 and disconnected (a client that drips bytes is never silent).",
    )
    data_deadline_s: float = setting(
        300.0,
        "A message (DATA) must be complete within this long plus one second per KiB received, "
        "or the client is told 421 and disconnected; a sender faster than 1 KiB/s is never "
        "cut off.",
    )
    max_recipients: int = setting(
        1000,
        "RCPT TO per message; more get 452 and the client sends them in another transaction "
        "(RFC 5321 requires at least 100).",
    )
    hostname: str = setting("", "Name in the greeting and EHLO reply; empty means this host's.")


@dataclass
class MilterSettings:
    """The Postfix/Sendmail milter that `mailvault serve` can run."""

    listen: list[str] = setting([], "HOST:PORT addresses for the milter (empty: no milter).")
    on_failure: str = setting(
        "tempfail",
        "What the MTA is told when a copy cannot be stored: tempfail (the MTA keeps the "
        "message and retries) or accept (mail flows on unarchived).",
        ranked("accept", "tempfail"),
    )


@dataclass
class SpoolSettings:
    """Where captured messages wait, fsynced, until the vault has committed them."""

    folder: str = setting("", "Spool folder; empty means VAULT/spool.")
    segment_mb: int = setting(64, "A spool segment file is sealed once it reaches this size.")
    max_mb: int = setting(
        4096, "When the spool holds this much (the vault behind or down), new mail gets 4xx."
    )
    in_flow_depth: int = setting(
        2000,
        "When more messages than this wait for the vault, each new one waits (up to "
        "in_flow_delay_s) for the vault to catch up before its 250; 0 turns this off.",
    )
    in_flow_delay_s: float = setting(
        1.0, "Longest wait of in-flow control (Postfix's in_flow_delay); then it is spooled."
    )


@dataclass
class ServeSettings:
    """This node of ``mailvault serve``, and how scheduled work is shared between nodes."""

    node: str = setting(
        "", "This node's name in job claims and their history (several serve nodes sharing "
        "one PostgreSQL catalog each need their own); empty: the machine's host name.")
    lease_s: float = setting(
        60.0, "How long a node's claim on a scheduled job (a sync, the lifecycle pass, a "
        "review run, an export, a disposition) lasts unless renewed; a running job renews it "
        "every third of this, and another node takes the job over once a dead node's lease "
        "has run out.")


@dataclass
class RestoreSettings:
    """Restoring archived mail into a mailbox over IMAP (`mailvault restore`)."""

    users_own_mail: bool = setting(
        False, "People with the user role may restore their own mail (the messages one of "
        "their addresses is party to) into a mailbox; off: only auditors restore.", at_most)


@dataclass
class AccountsSettings:
    """The people who use the archive: passwords, sign-in lock-out, TOTP, API tokens."""

    min_password_length: int = setting(
        12, "Shortest password accepted for a user (`mailvault user add`, `user passwd`).")
    max_failed_logins: int = setting(
        5, "Failed sign-ins in a row (wrong password or code) after which an account is locked "
        "(0: never locked).")
    lockout_minutes: int = setting(
        15, "How long a locked account refuses every sign-in, even with the right password.")
    totp_issuer: str = setting(
        "mailvault", "Issuer shown by authenticator apps for this archive's TOTP codes.")
    token_expires_days: int = setting(
        90, "Lifetime of an API token made without --expires (0: tokens never expire).")


@dataclass
class WebSettings:
    """The web application and JSON API that `mailvault serve` runs."""

    listen: list[str] = setting(
        ["127.0.0.1:8025"],
        "HOST:PORT addresses for the web application (empty: no web). Without tls_cert only "
        "loopback addresses are allowed.")
    tls_cert: str = setting("", "PEM certificate (chain): the web is served over HTTPS.")
    tls_key: str = setting("", "PEM private key of tls_cert.")
    session_idle_minutes: int = setting(
        30, "A session unused this long is signed out.")
    session_max_hours: int = setting(
        12, "A session ends this long after sign-in, however busy.")
    signin_attempts: int = setting(
        20, "Sign-in attempts one client address may make per signin_window_minutes; more are "
        "refused (and the lock-out audited) until the window has passed.")
    signin_window_minutes: int = setting(
        15, "The window of signin_attempts.")
    oidc_issuer: str = setting(
        "", "OpenID Connect provider (its issuer URL) for sign-in; empty: none. A person is "
        "matched by the e-mail claim to an existing user's address, never created.")
    oidc_client_id: str = setting("", "This archive's client id at the OpenID provider.")
    oidc_client_secret_file: str = setting(
        "", "File holding the client secret at the OpenID provider.")
    oidc_name: str = setting("single sign-on", "What the sign-in button calls the provider.")
    public_url: str = setting(
        "", "The URL people reach the web at (for the OpenID redirect), e.g. "
        "https://archive.example.org; empty: the address of each request.")


@dataclass
class MonitoringSettings:
    """What the monitoring page and GET /metrics keep and whom /metrics answers."""

    storage_sample_minutes: int = setting(
        15, "How often `serve` records the bytes stored per tier (the monitoring page's "
        "storage chart); a monitoring read records one too when the newest is older.")
    storage_sample_days: int = setting(
        90, "Storage samples older than this are deleted when a new one is recorded.")
    metrics_loopback: bool = setting(
        False, "Answer GET /metrics without credentials to clients on a loopback address "
        "(a Prometheus on the archive's machine). Off: /metrics needs an administrator's "
        "API token or session. Leave off behind a reverse proxy on the same machine.")


@dataclass
class ReviewSettings:
    """Supervisory review: what is internal mail, what is automated, how often serve runs it."""

    internal_domains: list[str] = setting(
        [], "Mail domains of the organisation (a subdomain counts too). A message is internal "
        "when its sender and every recipient are in them, outbound when its sender is and a "
        "recipient is not, inbound when its sender is not; empty: the domains of each "
        "policy's supervised addresses.")
    automated_senders: list[str] = setting(
        [], "Sender addresses (or @domain) whose mail review policies leave out as automated, "
        "besides mail marked List-Id, Auto-Submitted or Precedence bulk/list/junk.")
    every_minutes: int = setting(
        60, "How often 'mailvault serve' runs the review policies (0: never; "
        "'mailvault review run' runs them at any time).")


@dataclass
class GatewaySettings:
    """The gateway: encrypted mailboxes (journal targets of their own), the POP3 service that
    serves them, and the SMTP and POP3 proxies."""

    domain: str = setting(
        "", "Mail domain of the gateway mailboxes: a mailbox's address is ID@domain, and the "
        "SMTP endpoint accepts mail for it (empty: no mailbox address is accepted).")
    folder: str = setting(
        "", "Folder of the gateway mailboxes, apart from the vault's data; empty means "
        "VAULT/gateway.")
    pop3_listen: list[str] = setting(
        [], "HOST:PORT addresses of the gateway's POP3 service (STLS; without tls_cert only "
        "loopback addresses are allowed).")
    pop3_tls_listen: list[str] = setting(
        [], "HOST:PORT addresses of the gateway's POP3 service with implicit TLS (POP3S, usually "
        "995); needs tls_cert.")
    pop3_proxy_listen: list[str] = setting(
        [], "HOST:PORT addresses of the POP3 proxy (STLS towards the client).")
    pop3_proxy_tls_listen: list[str] = setting(
        [], "HOST:PORT addresses of the POP3 proxy with implicit TLS (POP3S); needs tls_cert.")
    smtp_proxy_listen: list[str] = setting(
        [], "HOST:PORT addresses of the SMTP proxy (STARTTLS towards the client).")
    smtp_proxy_tls_listen: list[str] = setting(
        [], "HOST:PORT addresses of the SMTP proxy with implicit TLS (usually 465); needs "
        "tls_cert.")
    upstream_allow: list[str] = setting(
        [], "Servers the proxies may connect to: host names or fnmatch patterns "
        "(*.example.org). Empty: none, so the proxies never relay anywhere.", subset)
    ca_file: str = setting(
        "", "PEM file of the certificate authorities that upstream servers' certificates are "
        "checked against (a private CA); empty: the system's.")
    tls_cert: str = setting(
        "", "PEM certificate (chain) that the POP3 service and the proxies present to clients.")
    tls_key: str = setting("", "PEM private key of tls_cert.")


@dataclass
class Settings:
    """Every setting of a vault, by section (the TOML tables of mailvault.toml)."""

    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    tiers: TierSettings = field(default_factory=TierSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    milter: MilterSettings = field(default_factory=MilterSettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    restore: RestoreSettings = field(default_factory=RestoreSettings)
    accounts: AccountsSettings = field(default_factory=AccountsSettings)
    web: WebSettings = field(default_factory=WebSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)


def load_settings(vault_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``mailvault.toml`` in the vault folder and apply ``MAILVAULT_*`` overrides."""
    environ = os.environ if environ is None else environ
    path = vault_dir / CONFIG_FILE
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path} cannot be read: {exc}.") from exc
    settings = Settings()
    known_sections = {f.name for f in dataclasses.fields(Settings)}
    for name in data:
        if name not in known_sections and name not in FREE_SECTIONS:
            raise ConfigError(f"{path} has an unknown section [{name}].")
    for section_field in dataclasses.fields(Settings):
        section = getattr(settings, section_field.name)
        table = data.get(section_field.name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section_field.name}] must be a table.")
        _apply_section(section, section_field.name, table, environ, path)
    return settings


def _apply_section(
    section: Any, name: str, table: dict[str, Any], environ: Mapping[str, str], path: Path
) -> None:
    fields = {f.name: f for f in dataclasses.fields(section)}
    for key in table:
        if key not in fields:
            raise ConfigError(f"{path}: [{name}] has an unknown setting {key!r}.")
    hints = typing.get_type_hints(type(section))
    for key in fields:
        label = f"[{name}] {key}"
        if key in table:
            setattr(section, key, _coerce(table[key], hints[key], label))
        env_name = f"MAILVAULT_{name}_{key}".upper()
        if env_name not in environ:
            continue
        value = _coerce(_from_env(environ[env_name], hints[key], env_name), hints[key], label)
        stricter = fields[key].metadata.get("stricter")
        old = getattr(section, key)
        if stricter is not None and not stricter(old, value):
            where = f"in {path.name}" if key in table else "by default"
            raise ConfigError(f"{env_name} may not weaken the compliance setting {label} "
                              f"({_shown(old)} {where}): change it in {path.name}, where "
                              "each change is audited.")
        setattr(section, key, value)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return str(value)


def compliance_settings(settings: Settings) -> dict[str, Any]:
    """The compliance settings' values by "section.name" (what the audit log records)."""
    values = {}
    for section_field in dataclasses.fields(Settings):
        section = getattr(settings, section_field.name)
        for f in dataclasses.fields(section):
            if f.metadata.get("stricter") is not None:
                value = getattr(section, f.name)
                values[f"{section_field.name}.{f.name}"] = (
                    list(value) if isinstance(value, list) else value)
    return values


def _from_env(text: str, hint: Any, env_name: str) -> Any:
    if _base(hint) is list:
        return [item.strip() for item in text.split(",") if item.strip()]
    if _base(hint) is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{env_name} must be true or false, not {text!r}.")
    return text


def _base(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _base(args[0])
    return origin or hint


def _coerce(value: Any, hint: Any, label: str) -> Any:
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(
        None
    ) in typing.get_args(hint)
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise ConfigError(f"{label} must be set.")
    base = _base(hint)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if base is list:
            if isinstance(value, str):
                value = [value]
            return [str(v) for v in value]
        if base is Path:
            return Path(value)
        return base(value)
    except (TypeError, ValueError):
        kind = getattr(base, "__name__", base)
        raise ConfigError(f"{label} must be a {kind}, not {value!r}.") from None


def describe_settings() -> list[tuple[str, str, str, str]]:
    """Every setting as (section, name, default, help), for the docs and for tests."""
    rows = []
    settings = Settings()
    for section_field in dataclasses.fields(Settings):
        section = getattr(settings, section_field.name)
        for f in dataclasses.fields(section):
            default = repr(getattr(section, f.name))
            help_text = f.metadata.get("help", "")
            if f.metadata.get("stricter") is not None:
                help_text += (" *Compliance setting: each change is audited; the environment "
                              "may only make it stricter.*")
            rows.append((section_field.name, f.name, default, help_text))
    return rows


def render_settings_doc() -> str:
    """The Markdown reference of every setting (docs/configuration.md)."""
    lines = [
        "# Configuration",
        "",
        "Settings live in `mailvault.toml` in the vault folder, one TOML table per section.",
        "Each can be overridden from the environment as `MAILVAULT_<SECTION>_<NAME>`",
        "(lists comma-separated). This page is generated by `python -m mailvault.config`.",
        "",
        "Compliance settings are marked: when one of them changes, the next command that opens",
        "the vault writes a `settings` entry to the audit log (a digest of them all and each",
        "change, old and new), and an environment variable that would weaken one (turn",
        "four-eyes off, shorten the default retention, widen the SMTP allowlist) makes the",
        "command fail instead.",
        "",
    ]
    current = None
    for section, name, default, help_text in describe_settings():
        if section != current:
            doc = (getattr(Settings(), section).__doc__ or "").strip()
            lines += ["", f"## [{section}]", "", doc, ""]
            lines += ["| setting | default | meaning |", "|---|---|---|"]
            current = section
        lines.append(f"| `{name}` | `{default}` | {help_text} |")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


if __name__ == "__main__":
    print(render_settings_doc(), end="")
