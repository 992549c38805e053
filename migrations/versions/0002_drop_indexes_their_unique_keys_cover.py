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


def upgrade() -> None:
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approvals_mission_id'))

    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_artifacts_mission_id'))

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_mission_id'))

    with op.batch_alter_table('model_turns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_turns_mission_id'))

    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_steps_mission_id'))

    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tool_calls_mission_id'))


def downgrade() -> None:
    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tool_calls_mission_id'), ['mission_id'], unique=False)

    with op.batch_alter_table('steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_steps_mission_id'), ['mission_id'], unique=False)

    with op.batch_alter_table('model_turns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_turns_mission_id'), ['mission_id'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_mission_id'), ['mission_id'], unique=False)

    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_artifacts_mission_id'), ['mission_id'], unique=False)

    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_mission_id'), ['mission_id'], unique=False)
