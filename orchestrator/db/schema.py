"""Schema management: Alembic migrations to head, plus the checkpointer's own tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import migrations
from orchestrator.db.engine import engine_for

__all__ = ["upgrade", "alembic_config", "current_revision", "head_revision"]


def alembic_config(url: str) -> Config:
    """An Alembic config that works from an installed package as well as from a checkout."""
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str) -> None:
    """Bring the database to the latest migration (idempotent)."""
    if current_revision(url) == head_revision(url):
        return
    command.upgrade(alembic_config(url), "head")


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(url: str) -> str | None:
    with engine_for(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
