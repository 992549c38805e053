"""threads: LangGraph clients' threads and the mission each one runs

A LangGraph client creates a thread (with its metadata) before it says what to run; the thread's first run
creates the mission. The row keeps the metadata until then, and the thread id -> mission id mapping after.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 03:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('threads',
    sa.Column('thread_id', sa.String(length=64), nullable=False),
    sa.Column('mission_id', sa.String(length=32), nullable=True),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['mission_id'], ['missions.id'], name=op.f('fk_threads_mission_id_missions'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('thread_id', name=op.f('pk_threads')),
    sa.UniqueConstraint('mission_id', name=op.f('uq_threads_mission_id'))
    )
    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_threads_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('threads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_threads_created_at'))
    op.drop_table('threads')
