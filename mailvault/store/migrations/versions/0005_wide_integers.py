"""Format 5: the columns that can outgrow 2**31 become 64-bit (ids, byte offsets and sizes,
epoch times, IMAP's unsigned 32-bit UIDVALIDITY and UIDs).

Only PostgreSQL changes: its INTEGER is 32-bit, SQLite's is 64-bit already (and a SQLite key
must stay INTEGER to be the rowid that hands out ids), so on SQLite only the format moves.
On PostgreSQL each table is altered in one statement (one rewrite of its rows, however many
of its columns widen), and the sequence behind each widened key is made 64-bit too: a
SERIAL's sequence stops at 2**31 - 1 whatever its column holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailvault.store.migrations import steps

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# The columns as this format declares them (schema.Int64); a migration keeps its own list,
# since the schema may change later.
WIDENED: dict[str, tuple[str, ...]] = {
    "volumes": ("id", "created_at"),
    "messages": ("id", "size", "stored_bytes", "volume_id", "offset", "length", "date",
                 "archived_at"),
    "parts": ("volume_id", "offset", "length", "size"),
    "message_parts": ("message_id",),
    "addresses": ("message_id",),
    "attachments": ("message_id", "size"),
    "provenance": ("id", "message_id", "received_at"),
    "failures": ("id", "at"),
    "index_state": ("value",),
    "reindex_queue": ("message_id",),
    "audit_log": ("seq", "at"),
    "sources": ("created_at",),
    "source_folders": ("uidvalidity", "highest_uid", "updated_at"),
    "source_seen": ("at",),
    "source_runs": ("id", "started_at", "finished_at"),
    "tier_jobs": ("id", "created_at", "finished_at"),
    "tier_job_items": ("job_id", "message_id"),
    "dictionaries": ("dict_id", "created_at"),
    "retention_policies": ("id", "created_at"),
    "retention": ("message_id", "retain_until", "policy_id"),
    "legal_holds": ("id", "date_from", "date_to", "created_at", "released_at"),
    "disposition_runs": ("id", "proposed_at", "executed_at"),
    "disposition_items": ("run_id", "message_id"),
    "tombstones": ("id", "message_id", "size", "date", "archived_at", "retain_until",
                   "run_id", "disposed_at"),
    "users": ("id", "locked_until", "last_login_at", "created_at", "updated_at",
              "removed_at"),
    "api_tokens": ("id", "user_id", "created_at", "expires_at", "revoked_at",
                   "last_used_at"),
    "web_sessions": ("id", "user_id", "created_at", "seen_at", "ended_at"),
    "saved_searches": ("id", "created_at"),
    "message_checks": ("id", "message_id", "at"),
    "storage_samples": ("id", "at", "raw_bytes", "stored_bytes"),
    "review_policies": ("id", "created_at", "removed_at"),
    "review_items": ("id", "policy_id", "message_id", "created_at", "decided_at"),
    "review_decisions": ("id", "item_id", "at"),
    "review_periods": ("id", "policy_id", "ran_at"),
    "review_tags": ("id", "message_id", "added_at"),
    "cases": ("id", "created_at", "closed_at"),
    "case_items": ("id", "case_id", "created_at"),
    "case_audit": ("case_id", "seq"),
    "export_jobs": ("id", "case_id", "last_message", "created_at", "finished_at"),
    "export_items": ("job_id", "message_id"),
    "restore_jobs": ("id", "planned_bytes", "handled_bytes", "created_at", "updated_at",
                     "finished_at"),
    "job_claims": ("run_id",),
    "job_runs": ("id",),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    quote = bind.dialect.identifier_preparer.quote
    for table, columns in WIDENED.items():
        op.execute(f"ALTER TABLE {quote(table)} " + ", ".join(
            f"ALTER COLUMN {quote(column)} TYPE BIGINT" for column in columns))
        for column in columns:
            sequence = bind.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                                    {"t": quote(table), "c": column}).scalar()
            if sequence is not None:
                op.execute(f"ALTER SEQUENCE {sequence} AS BIGINT")


def downgrade() -> None:
    steps.refuse_downgrade()
