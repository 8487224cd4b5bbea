"""Alembic's entry point: run the migrations on the connection ``vault_format`` hands over.

No ini file and no URL: the caller passes an open SQLAlchemy connection in
``config.attributes["connection"]``, so the same migrations run on SQLite now and on
PostgreSQL later.
"""

from __future__ import annotations

from alembic import context

from mailvault.store import schema

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it, which Alembic's batch mode does.
context.configure(connection=connection, target_metadata=schema.metadata,
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
