"""The catalog's tables (SQLAlchemy Core, so SQLite now and PostgreSQL later share one schema).

Hashes are stored as lowercase hex text: readable in a SQL shell, and the same in both
databases. Times are integer seconds since the epoch, UTC.

Every column that can outgrow 2**31 is ``Int64``: ids, byte offsets and sizes, epoch times
(2038), and IMAP's unsigned 32-bit UIDVALIDITY and UIDs. Small counts (attachments, days,
review levels, a run's or a job's messages) stay ``Integer``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# 64-bit on PostgreSQL (BIGINT, BIGSERIAL for a key), INTEGER on SQLite: SQLite's INTEGER is
# 64-bit already, and only a key declared INTEGER is its rowid, which hands out new ids.
Int64 = BigInteger().with_variant(Integer(), "sqlite")

volumes = Table(
    "volumes",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("tier", String(16), nullable=False),
    Column("folder", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size", Int64, nullable=False),
    Column("stored_bytes", Int64, nullable=False),
    Column("tier", String(16), nullable=False, default="active"),
    Column("volume_id", Int64, nullable=False),
    Column("offset", Int64, nullable=False),
    Column("length", Int64, nullable=False),
    Column("date", Int64),
    Column("archived_at", Int64, nullable=False),
    Column("subject", Text, nullable=False, default=""),
    Column("from_addr", Text, nullable=False, default=""),
    Column("to_addrs", Text, nullable=False, default=""),
    Column("cc_addrs", Text, nullable=False, default=""),
    Column("message_id", Text, nullable=False, default=""),
    Column("folder", Text, nullable=False, default=""),
    Column("attachments", Integer, nullable=False, default=0),
    Column("defects", Text, nullable=False, default=""),
    # Ids are never reused, even after disposition: audit entries and reports refer to them.
    sqlite_autoincrement=True,
)
Index("messages_date", messages.c.date)
# The monitoring page's "archived per minute" reads the last hours only.
Index("messages_archived_at", messages.c.archived_at)
Index("messages_message_id", messages.c.message_id)

parts = Table(
    "parts",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("tier", String(16), nullable=False, default="active"),
    Column("volume_id", Int64, nullable=False),
    Column("offset", Int64, nullable=False),
    Column("length", Int64, nullable=False),
    Column("size", Int64, nullable=False),
    Column("refs", Integer, nullable=False, default=0),
)

message_parts = Table(
    "message_parts",
    metadata,
    Column("message_id", Int64, ForeignKey("messages.id"), primary_key=True),
    Column("part_sha256", String(64), ForeignKey("parts.sha256"), primary_key=True),
)
Index("message_parts_part", message_parts.c.part_sha256)

addresses = Table(
    "addresses",
    metadata,
    Column("message_id", Int64, ForeignKey("messages.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("address", Text, nullable=False),
    Column("name", Text, nullable=False, default=""),
)
Index("addresses_message", addresses.c.message_id)
Index("addresses_address", addresses.c.address)

attachments = Table(
    "attachments",
    metadata,
    Column("message_id", Int64, ForeignKey("messages.id"), nullable=False),
    Column("filename", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("size", Int64, nullable=False),
)
Index("attachments_message", attachments.c.message_id)

provenance = Table(
    "provenance",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("message_id", Int64, ForeignKey("messages.id"), nullable=False),
    Column("key", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("folder", Text),
    Column("account", Text),
    Column("received_at", Int64, nullable=False),
    Column("data", Text, nullable=False),
    UniqueConstraint("message_id", "key"),
)
Index("provenance_source", provenance.c.kind, provenance.c.source)

failures = Table(
    "failures",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("at", Int64, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("item", Text),
    Column("reason", Text, nullable=False),
    Column("provenance", Text, nullable=False),
    Column("resolved", Boolean, nullable=False, default=False),
)
# A failure of one item is found again when it is archived or fails again.
Index("failures_item", failures.c.kind, failures.c.source, failures.c.item)

index_state = Table(
    "index_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Int64, nullable=False),
)

# Every change to an archived message that its index document must follow (an arrival, a
# tier move, a disposal), in the order the changes committed (``seq``). Each index applies the
# entries after the last one it applied (its marker's ``generation``), so several nodes' indexes
# follow one log; entries every index has applied are pruned (``index_cursors``).
reindex_log = Table(
    "reindex_log",
    metadata,
    Column("seq", Int64, primary_key=True, autoincrement=False),
    Column("message_id", Int64, nullable=False),
)

# How far each index (a node's Tantivy folder, or the PostgreSQL search tables) has applied the
# reindex log, and when it last said so: entries every index seen lately has applied go.
index_cursors = Table(
    "index_cursors",
    metadata,
    Column("name", String(300), primary_key=True),
    Column("seq", Int64, nullable=False),
    Column("seen_at", Float, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Int64, primary_key=True),
    Column("at", Int64, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
# The newest entry of one action (the last settings record, the chain's key introduction)
# in one index lookup, however long the log grows.
Index("audit_log_action", audit_log.c.action, audit_log.c.seq)

# -- remote sources (IMAP, POP3): definitions, per-folder sync state, runs ------------------

sources = Table(
    "sources",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("spec", Text, nullable=False),
    Column("secret", Text, nullable=False, default=""),
    Column("created_at", Int64, nullable=False),
)

source_folders = Table(
    "source_folders",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("account", Text, primary_key=True),
    Column("folder", Text, primary_key=True),
    Column("uidvalidity", Int64, nullable=False),
    Column("highest_uid", Int64, nullable=False, default=0),
    Column("status", String(16), nullable=False, default="active"),
    Column("note", Text, nullable=False, default=""),
    Column("updated_at", Int64, nullable=False),
)

source_seen = Table(
    "source_seen",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("account", Text, primary_key=True),
    Column("uidl", Text, primary_key=True),
    Column("at", Int64, nullable=False),
)

source_runs = Table(
    "source_runs",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("source", String(64), nullable=False),
    Column("started_at", Int64, nullable=False),
    Column("finished_at", Int64),
    Column("status", String(16), nullable=False),
    Column("archived", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default="{}"),
)
Index("source_runs_source", source_runs.c.source, source_runs.c.id)

# -- compliance: tier jobs, packing dictionaries, retention, holds, disposition --------------

tier_jobs = Table(
    "tier_jobs",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("query", Text, nullable=False),
    Column("target", String(16), nullable=False),
    Column("actor", Text, nullable=False),
    Column("state", String(16), nullable=False),  # running | done
    Column("total", Integer, nullable=False),
    Column("created_at", Int64, nullable=False),
    Column("finished_at", Int64),
)

tier_job_items = Table(
    "tier_job_items",
    metadata,
    Column("job_id", Int64, ForeignKey("tier_jobs.id"), primary_key=True),
    Column("message_id", Int64, primary_key=True),
)

dictionaries = Table(
    "dictionaries",
    metadata,
    Column("dict_id", Int64, primary_key=True, autoincrement=False),
    Column("tier", String(16), nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", Int64, nullable=False),
)

retention_policies = Table(
    "retention_policies",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("match", String(16), nullable=False),  # default|source|address|domain|folder|tier|query
    Column("value", Text, nullable=False, default=""),
    Column("days", Integer, nullable=False),
    Column("counted_from", String(16), nullable=False),  # date | archived
    Column("created_by", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
)

retention = Table(
    "retention",
    metadata,
    Column("message_id", Int64, primary_key=True),
    Column("retain_until", Int64, nullable=False),
    Column("policy_id", Int64, nullable=False),
)
Index("retention_until", retention.c.retain_until)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("custodian", Text),
    Column("query", Text),
    Column("date_from", Int64),
    Column("date_to", Int64),
    Column("reason", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
    Column("released_by", Text),
    Column("released_at", Int64),
)

disposition_runs = Table(
    "disposition_runs",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("state", String(16), nullable=False),  # proposed | executing | executed | cancelled
    Column("proposed_by", Text, nullable=False),
    Column("proposed_at", Int64, nullable=False),
    Column("approved_by", Text),
    Column("executed_at", Int64),
    Column("candidates", Integer, nullable=False, default=0),
    Column("disposed", Integer, nullable=False, default=0),
    Column("report", Text, nullable=False, default=""),
)

disposition_items = Table(
    "disposition_items",
    metadata,
    Column("run_id", Int64, ForeignKey("disposition_runs.id"), primary_key=True),
    Column("message_id", Int64, primary_key=True),
)

tombstones = Table(
    "tombstones",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("message_id", Int64, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Int64, nullable=False),
    Column("date", Int64),
    Column("archived_at", Int64, nullable=False),
    Column("retain_until", Int64, nullable=False),
    Column("policy", Text, nullable=False),
    Column("run_id", Int64, nullable=False),
    Column("proposed_by", Text, nullable=False),
    Column("approved_by", Text, nullable=False),
    Column("disposed_at", Int64, nullable=False),
)
Index("tombstones_sha256", tombstones.c.sha256)

# -- accounts: the people who use the archive, and their API tokens -------------------------

users = Table(
    "users",
    metadata,
    # Ids and names are never reused: a removed user's row stays (removed_at set), so every
    # audit entry keeps naming one person.
    Column("id", Int64, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("roles", Text, nullable=False),  # space-separated role names
    Column("addresses", Text, nullable=False, default=""),  # space-separated, lower case
    Column("password_hash", Text),  # Argon2id; cleared on removal
    Column("totp_secret", Text),  # sealed with keyring.wrap_secret; cleared on removal
    Column("totp_last_step", Integer),  # last TOTP time step accepted (replay guard)
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", Int64),
    Column("last_login_at", Int64),
    Column("created_at", Int64, nullable=False),
    Column("updated_at", Int64, nullable=False),
    Column("removed_at", Int64),
    sqlite_autoincrement=True,
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("user_id", Int64, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 hex, never the token
    Column("created_by", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
    Column("expires_at", Int64),  # null: never expires
    Column("revoked_at", Int64),
    Column("last_used_at", Int64),
    sqlite_autoincrement=True,
)
Index("api_tokens_user", api_tokens.c.user_id)

# -- the web application: sessions, saved searches; per-message verification results ----------

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Int64, primary_key=True),
    # SHA-256 hex of the session token: the cookie's value never rests in the catalog.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", Int64, ForeignKey("users.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("client", Text, nullable=False, default=""),
    Column("created_at", Int64, nullable=False),
    Column("seen_at", Int64, nullable=False),
    Column("ended_at", Int64),
    # Message ids whose remote images this session chose to load (space-separated).
    Column("remote_images", Text, nullable=False, default=""),
    sqlite_autoincrement=True,
)
Index("web_sessions_user", web_sessions.c.user_id)

saved_searches = Table(
    "saved_searches",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("owner", String(64), nullable=False),  # the principal's name
    Column("name", Text, nullable=False),
    Column("query", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
    UniqueConstraint("owner", "name"),
    sqlite_autoincrement=True,
)

message_checks = Table(
    "message_checks",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("message_id", Int64, nullable=False),
    Column("at", Int64, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("actor", Text, nullable=False),
)
Index("message_checks_message", message_checks.c.message_id, message_checks.c.at)

# What each tier held at a moment (the monitoring page's storage chart): written by `serve`
# every [monitoring] storage_sample_minutes, and by a monitoring read when the newest is older.
storage_samples = Table(
    "storage_samples",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("at", Int64, nullable=False),
    Column("tier", String(16), nullable=False),
    Column("messages", Integer, nullable=False),
    Column("raw_bytes", Int64, nullable=False),
    Column("stored_bytes", Int64, nullable=False),
)
Index("storage_samples_at", storage_samples.c.at)
# -- supervisory review: policies, their queues, decisions, tags (see mailvault/review/) ------

review_policies = Table(
    "review_policies",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    # The policy as JSON (who is supervised, directions, lexicon, sample, exclusions,
    # reviewers): a policy is never edited, only added and removed, so one record says it.
    Column("definition", Text, nullable=False),
    Column("seed", Integer, nullable=False),  # the sample's recorded seed
    Column("created_by", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
    Column("removed_by", Text),
    Column("removed_at", Int64),
    sqlite_autoincrement=True,
)

review_items = Table(
    "review_items",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("policy_id", Int64, ForeignKey("review_policies.id"), nullable=False),
    Column("message_id", Int64, nullable=False),
    Column("period", String(16), nullable=False),  # 2001-05-14 (daily) or 2001-W20 (weekly)
    Column("terms", Text, nullable=False, default="[]"),  # JSON: the lexicon terms that hit
    Column("sampled", Boolean, nullable=False, default=False),
    # pending, escalated (waiting at level 2), no_issue, violation
    Column("state", String(16), nullable=False, default="pending"),
    Column("level", Integer, nullable=False, default=1),
    Column("created_at", Int64, nullable=False),
    Column("decided_by", Text),
    Column("decided_at", Int64),
    Column("note", Text, nullable=False, default=""),
    UniqueConstraint("policy_id", "message_id"),
    sqlite_autoincrement=True,
)
Index("review_items_message", review_items.c.message_id)
Index("review_items_state", review_items.c.policy_id, review_items.c.state)

review_decisions = Table(
    "review_decisions",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("item_id", Int64, ForeignKey("review_items.id"), nullable=False),
    Column("level", Integer, nullable=False),
    Column("decision", String(16), nullable=False),  # no_issue, escalate, violation
    Column("note", Text, nullable=False, default=""),
    Column("reviewer", Text, nullable=False),
    Column("at", Int64, nullable=False),
)
Index("review_decisions_item", review_decisions.c.item_id)

review_periods = Table(
    "review_periods",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("policy_id", Int64, ForeignKey("review_policies.id"), nullable=False),
    Column("period", String(16), nullable=False),
    Column("in_scope", Integer, nullable=False),
    Column("sampled", Integer, nullable=False),
    # Whether the period's sample was drawn: once, after the period ended, so the draw covers
    # all its mail and can be made again from the seed.
    Column("drawn", Boolean, nullable=False, default=False),
    Column("hits", Text, nullable=False, default="{}"),  # JSON: lexicon term -> messages hit
    Column("ran_at", Int64, nullable=False),
    UniqueConstraint("policy_id", "period"),
)

review_tags = Table(
    "review_tags",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("message_id", Int64, nullable=False),
    Column("tag", String(64), nullable=False),  # lower case
    Column("added_by", Text, nullable=False),
    Column("added_at", Int64, nullable=False),
    UniqueConstraint("message_id", "tag"),
)
Index("review_tags_tag", review_tags.c.tag)
# -- eDiscovery: cases, what they hold, the audit entries that touched them, export jobs ------

cases = Table(
    "cases",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("state", String(16), nullable=False),  # open | closed
    Column("created_by", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
    Column("closed_by", Text),
    Column("closed_at", Int64),
    sqlite_autoincrement=True,
)

case_items = Table(
    "case_items",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("case_id", Int64, ForeignKey("cases.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # custodian | query | hold | note
    Column("name", Text, nullable=False, default=""),
    Column("value", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", Int64, nullable=False),
    sqlite_autoincrement=True,
)
Index("case_items_case", case_items.c.case_id, case_items.c.kind)

# Which audit entries touched which case (the chain of custody). Written by the one audit
# writer in the entry's own transaction; the entry's detail names the case too, so the
# hash chain covers the reference.
case_audit = Table(
    "case_audit",
    metadata,
    Column("case_id", Int64, primary_key=True),
    Column("seq", Int64, primary_key=True),
)

export_jobs = Table(
    "export_jobs",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("case_id", Int64),
    Column("query", Text, nullable=False),
    Column("format", String(8), nullable=False),  # eml | mbox
    Column("layout", String(16), nullable=False),  # folder | custodian
    Column("zip", Boolean, nullable=False, default=False),
    Column("dest", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("state", String(16), nullable=False),  # running | done
    Column("total", Integer, nullable=False),
    Column("done", Integer, nullable=False, default=0),
    Column("last_message", Int64, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("summary_sha256", String(64), nullable=False, default=""),
    Column("created_at", Int64, nullable=False),
    Column("finished_at", Int64),
    sqlite_autoincrement=True,
)
Index("export_jobs_dest", export_jobs.c.dest)

export_items = Table(
    "export_items",
    metadata,
    Column("job_id", Int64, ForeignKey("export_jobs.id"), primary_key=True),
    Column("message_id", Int64, primary_key=True),
    # What a batch of the export wrote (JSON), on its last message, set when the batch is
    # checkpointed (one record a message, its documents, before batch records).
    Column("record", Text, nullable=False, default=""),
)

# A restore to a mailbox (``sources/restore_jobs.py``): what it restores where, how far its
# latest run got (kept as it goes, so a restart of the process or a resumed run still knows),
# and its outcome. The same restore started again (same principal, query, target and folder
# mode) while unfinished is the same job, taken up again.
restore_jobs = Table(
    "restore_jobs",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("actor", Text, nullable=False),
    Column("query", Text, nullable=False),
    Column("target", Text, nullable=False),  # user@host:port
    Column("folder_mode", Text, nullable=False),
    # queued | running | stopped (connection lost: run again) | failed | done
    Column("state", String(16), nullable=False),
    Column("runs", Integer, nullable=False, default=0),
    Column("planned", Integer, nullable=False, default=0),  # copies (message x folder)
    Column("handled", Integer, nullable=False, default=0),
    Column("planned_bytes", Int64, nullable=False, default=0),
    Column("handled_bytes", Int64, nullable=False, default=0),
    Column("report", Text, nullable=False, default=""),  # the last run's report (JSON)
    Column("error", Text, nullable=False, default=""),
    Column("created_at", Int64, nullable=False),
    Column("updated_at", Int64, nullable=False),
    Column("finished_at", Int64),
    sqlite_autoincrement=True,
)
Index("restore_jobs_actor", restore_jobs.c.actor)

# Scheduled work shared by several serve nodes (store/claims.py): one row per job name, held
# by one node at a time until its lease runs out. Lease times are float seconds: a lease is
# renewed every few seconds, and the history below is compared to the fraction of a second.
job_claims = Table(
    "job_claims",
    metadata,
    Column("job", String(200), primary_key=True),
    Column("holder", Text, nullable=False, default=""),  # '' while nobody holds it
    Column("node", Text, nullable=False, default=""),
    Column("run_id", Int64),
    Column("expires_at", Float, nullable=False, default=0.0),
    Column("finished_at", Float),  # when the last run that ended ended
)

# Every run of a claimed job: which node, from when to when, how it ended (done, failed,
# lapsed: its node stopped renewing and another took the job over).
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", Int64, primary_key=True),
    Column("job", String(200), nullable=False),
    Column("node", Text, nullable=False),
    Column("holder", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("renewed_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("outcome", String(16)),
    sqlite_autoincrement=True,
)
Index("job_runs_job", job_runs.c.job, job_runs.c.id)
