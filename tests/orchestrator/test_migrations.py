"""The Alembic head matches the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orchestrator.db.engine import engine_for
from orchestrator.db.models import Base
from orchestrator.db.schema import current_revision, head_revision


def test_alembic_head_matches_the_models(db_url: str) -> None:
    assert current_revision(db_url) == head_revision(db_url)
    with engine_for(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, Base.metadata)
                # LangGraph's checkpointer owns its own tables in the same database.
                if not (d[0] == "remove_table" and d[1].name.startswith("checkpoint"))]
    assert diff == []
