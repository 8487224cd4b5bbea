"""Format 3: restores to a mailbox as catalog jobs (``restore_jobs``), so a restore's
progress outlives the process that ran it and a resumed restore knows how far it got.

Created only when missing, as every migration's tables are.
"""

from __future__ import annotations

import sqlalchemy as sa

from mailvault.store.migrations import steps

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    steps.table('restore_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('folder_mode', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.Column('planned', sa.Integer(), nullable=False),
    sa.Column('handled', sa.Integer(), nullable=False),
    sa.Column('planned_bytes', sa.Integer(), nullable=False),
    sa.Column('handled_bytes', sa.Integer(), nullable=False),
    sa.Column('report', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.Integer(), nullable=False),
    sa.Column('finished_at', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    steps.index('restore_jobs', 'restore_jobs_actor', ['actor'])


def downgrade() -> None:
    steps.refuse_downgrade()
