"""Format 6: the reindex queue becomes an append-only log that every index follows with its own
cursor (``reindex_log``, ``index_cursors``), so that one node's reindex round no longer makes
every other node's index rewrite all its documents (search/indexing.py).

The queue's rows become log entries numbered above the old generation (the count of reindex
rounds, which index markers hold) with a gap: a marker may have run ahead of the catalog's
count by rounds whose recording a crash cut off, and such a marker must still apply every
entry. The old generation becomes the log's floor, so a marker behind it rebuilds as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mailvault.store.migrations import steps

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The tables as this format declares them (a migration keeps its own copy: the schema may
# change later).
_INT64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Far more rounds than a marker can have run ahead of the catalog (one per crashed recording).
MARKER_SLACK = 1 << 20


def upgrade() -> None:
    steps.table('reindex_log',
    sa.Column('seq', _INT64, autoincrement=False, nullable=False),
    sa.Column('message_id', _INT64, nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    steps.table('index_cursors',
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('seq', _INT64, nullable=False),
    sa.Column('seen_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    bind = op.get_bind()
    if not sa.inspect(bind).has_table('reindex_queue'):
        return
    state = sa.table('index_state', sa.column('name', sa.String), sa.column('value', _INT64))
    queue = sa.table('reindex_queue', sa.column('message_id', _INT64))
    log = sa.table('reindex_log', sa.column('seq', _INT64), sa.column('message_id', _INT64))
    generation = int(bind.execute(sa.select(state.c.value).where(
        state.c.name == 'reindex_generation')).scalar() or 0)
    queued = [row.message_id for row in bind.execute(
        sa.select(queue.c.message_id).order_by(queue.c.message_id))]
    start = generation + MARKER_SLACK
    if queued:
        bind.execute(log.insert(), [{"seq": start + n, "message_id": message_id}
                                    for n, message_id in enumerate(queued, 1)])
    bind.execute(state.delete().where(state.c.name.in_(
        ['reindex_generation', 'reindex_seq', 'reindex_floor'])))
    bind.execute(state.insert(), [{"name": 'reindex_seq', "value": start + len(queued)},
                                  {"name": 'reindex_floor', "value": generation}])
    op.drop_table('reindex_queue')


def downgrade() -> None:
    steps.refuse_downgrade()
