"""mission parent: the mission a fork was started from

``orchestrator fork ID --from STEP`` starts a new mission from the parent's record up to that step; the new
mission's row links to its parent. A plain column: a foreign key would make SQLite rebuild the missions table,
and the rebuild's DROP TABLE cascades into steps, events and every other child row.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('missions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('missions', schema=None) as batch_op:
        batch_op.drop_column('parent_id')
