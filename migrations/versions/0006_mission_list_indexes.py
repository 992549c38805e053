"""mission list indexes: (created_at, id), (owner, created_at, id), (status, created_at, id)

The mission list pages newest first by (created_at, id) with keyset cursors, for everyone, for a submitter
(their own missions) and by status. With these indexes each page reads its rows in index order; the single
column indexes on status and created_at are prefixes of the new ones and go.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 02:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('missions', schema=None) as batch_op:
        batch_op.create_index('ix_missions_created_at_id', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_missions_owner_created_at_id', ['owner', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_missions_status_created_at_id', ['status', 'created_at', 'id'], unique=False)
        batch_op.drop_index('ix_missions_created_at')
        batch_op.drop_index('ix_missions_status')


def downgrade() -> None:
    with op.batch_alter_table('missions', schema=None) as batch_op:
        batch_op.create_index('ix_missions_status', ['status'], unique=False)
        batch_op.create_index('ix_missions_created_at', ['created_at'], unique=False)
        batch_op.drop_index('ix_missions_status_created_at_id')
        batch_op.drop_index('ix_missions_owner_created_at_id')
        batch_op.drop_index('ix_missions_created_at_id')
