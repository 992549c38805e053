"""Persistence: typed models, the engine, and the repository functions every entry point shares."""

from orchestrator.db.engine import engine_for, is_sqlite, make_engine, session_scope
from orchestrator.db.models import Base

__all__ = ["Base", "engine_for", "is_sqlite", "make_engine", "session_scope"]
