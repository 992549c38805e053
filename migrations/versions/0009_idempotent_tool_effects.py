"""idempotent tool effects: a call is recorded as started before it runs; its effects carry its call id

A tool call that changes things is written to ``tool_calls`` with status ``started`` before it runs, and its
``attempts`` count grows when a resumed run retries it. The effects a retried call may repeat are keyed by the
call: the task it created (``tasks.call_id``, unique in the mission), the last update it made
(``tasks.updated_by_call``), the files it recorded (``artifacts.call_id``). Indexes, not table constraints:
SQLite would rebuild the tables for a constraint.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 06:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='1'))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('call_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('updated_by_call', sa.String(length=200), nullable=True))
    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('call_id', sa.String(length=200), nullable=True))
    op.create_index('uq_tasks_mission_call', 'tasks', ['mission_id', 'call_id'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_tasks_mission_call', table_name='tasks')
    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.drop_column('call_id')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('updated_by_call')
        batch_op.drop_column('call_id')
    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.drop_column('attempts')
