"""Format 4: job claims and their history, so that several serve nodes sharing one catalog
run each scheduled job on one node at a time (store/claims.py)."""

from __future__ import annotations

import sqlalchemy as sa

from mailvault.store.migrations import steps

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    steps.table('job_claims',
    sa.Column('job', sa.String(length=200), nullable=False),
    sa.Column('holder', sa.Text(), nullable=False),
    sa.Column('node', sa.Text(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.Float(), nullable=False),
    sa.Column('finished_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('job')
    )
    steps.table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=200), nullable=False),
    sa.Column('node', sa.Text(), nullable=False),
    sa.Column('holder', sa.Text(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('renewed_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    steps.index('job_runs', 'job_runs_job', ['job', 'id'])


def downgrade() -> None:
    steps.refuse_downgrade()
