"""steps say why they are not done

A step's outcome is its own (done, failed, blocked, waiting for a gate, rejected); ``reason`` holds why,
in words a user can act on, for every view to show beside the status. The report step is listed from the
start: existing missions get its pending row.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 02:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
    op.execute(sa.text(
        "INSERT INTO steps (mission_id, name, position, status, rounds) "
        "SELECT m.id, 'report', 6, 'pending', 0 FROM missions m "
        "WHERE NOT EXISTS (SELECT 1 FROM steps s WHERE s.mission_id = m.id AND s.name = 'report')"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM steps WHERE name = 'report' AND status = 'pending'"))
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_column("reason")
