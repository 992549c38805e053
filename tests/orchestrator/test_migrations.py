"""The Alembic head matches the models, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orchestrator.db.engine import engine_for
from orchestrator.db.models import Base
from orchestrator.db.schema import current_revision, head_revision

_SAVER_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations", "writes")


def _checkpointer_owned(diff: tuple) -> bool:
    """LangGraph's checkpointer and procrastinate (the PostgreSQL job queue) create and own their tables (and
    their indexes) in the same database."""
    kind, obj = diff[0], diff[1]
    table = getattr(obj, "name", "") if kind == "remove_table" else getattr(getattr(obj, "table", None), "name", "")
    return kind in ("remove_table", "remove_index") and (table in _SAVER_TABLES or table.startswith("procrastinate_"))


def test_alembic_head_matches_the_models(db_url: str) -> None:
    assert current_revision(db_url) == head_revision(db_url)
    with engine_for(db_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, Base.metadata)
                if not _checkpointer_owned(d)]
    assert diff == []


def test_every_migration_downgrades_and_upgrades_again(tmp_path) -> None:  # noqa: ANN001
    from alembic import command

    from orchestrator.db.schema import alembic_config, upgrade

    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    assert current_revision(url) is None
    upgrade(url)
    assert current_revision(url) == head_revision(url)
