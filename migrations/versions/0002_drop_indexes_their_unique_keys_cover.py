"""drop indexes their unique keys cover

Each of these tables has a unique key led by mission_id, which already serves lookups by mission; the
separate mission_id index only cost a second B-tree write per row on the hottest inserts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 03:36:11.519398
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TABLES = ("approvals", "artifacts", "events", "model_turns", "steps", "tool_calls")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_mission_id"))


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_mission_id"), ["mission_id"], unique=False)
