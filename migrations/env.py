"""Alembic environment: the URL comes from the service settings, the metadata from the models."""

from __future__ import annotations

from alembic import context

from orchestrator.config import get_settings
from orchestrator.db.engine import make_engine
from orchestrator.db.models import Base

target_metadata = Base.metadata


def _url() -> str:
    # A caller (tests, `orchestrator db upgrade`) may pass the URL explicitly; otherwise the settings decide.
    return context.config.attributes.get("database_url") or get_settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
