"""LangGraph's checkpointer in the same database as the records (SQLite or PostgreSQL saver)."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

__all__ = ["open_checkpointer"]


class _Saver(AbstractContextManager):
    def __init__(self, saver: BaseCheckpointSaver, closer: Any) -> None:
        self.saver, self._closer = saver, closer

    def __exit__(self, *exc: object) -> None:
        self._closer.close()


def open_checkpointer(url: str) -> _Saver:
    """A saver on the database at ``url``; its tables are created on first use. Close it when done."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(parsed.database or ":memory:", check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        saver = SqliteSaver(conn)
        saver.setup()
        return _Saver(saver, conn)
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    pool = ConnectionPool(dsn, min_size=1, max_size=8, open=True,
                          kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
    saver = PostgresSaver(pool)
    saver.setup()
    return _Saver(saver, pool)
