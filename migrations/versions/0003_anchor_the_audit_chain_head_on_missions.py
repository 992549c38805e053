"""anchor the audit chain head on missions

Each mission row holds the seq and hash of the last event of its chain, written in the same transaction
as the event, so deleting the chain's tail (or all of it) shows. Existing missions get their current head.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 02:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("missions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("chain_head", sa.String(length=64), server_default=_GENESIS, nullable=False))
    op.execute(sa.text(
        "UPDATE missions SET "
        "chain_seq = COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.mission_id = missions.id), 0), "
        "chain_head = COALESCE((SELECT e.hash FROM events e WHERE e.mission_id = missions.id "
        "ORDER BY e.seq DESC LIMIT 1), :genesis)").bindparams(genesis=_GENESIS))


def downgrade() -> None:
    with op.batch_alter_table("missions", schema=None) as batch_op:
        batch_op.drop_column("chain_head")
        batch_op.drop_column("chain_seq")
