"""LangGraph's checkpointer in the same database as the records (SQLite or PostgreSQL saver), fenced.

A checkpoint is a write of the run like any other: while a run is fenced (``orchestrator.db.direct.fenced``),
each checkpoint write first checks, in its own transaction, that the mission's lease is still this runner's,
and writes nothing when another runner has claimed it since (a stale runner resumed after a pause).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

from orchestrator.db.direct import Transaction, current_fence
from orchestrator.db.engine import engine_for

__all__ = ["open_checkpointer"]


class _Saver(AbstractContextManager):
    def __init__(self, saver: BaseCheckpointSaver, closer: Any) -> None:
        self.saver, self._closer = saver, closer

    def __exit__(self, *exc: object) -> None:
        self._closer.close()


def open_checkpointer(url: str) -> _Saver:
    """A saver on the database at ``url``; its tables are created on first use. Close it when done."""
    parsed = make_url(url)
    dialect = engine_for(url).dialect
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database or ":memory:", check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=NORMAL")  # as the records' engine: WAL commits without an fsync each
        saver = _sqlite_saver(conn, dialect)
        saver.setup()
        return _Saver(saver, conn)
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    pool = ConnectionPool(dsn, min_size=1, max_size=8, open=True,
                          kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
    saver = _postgres_saver(pool, dialect)
    saver.setup()
    return _Saver(saver, pool)


def _sqlite_saver(conn: sqlite3.Connection, dialect: Any) -> BaseCheckpointSaver:
    from langgraph.checkpoint.sqlite import SqliteSaver

    class FencedSqliteSaver(SqliteSaver):
        @contextmanager
        def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
            fence = current_fence()
            if fence is None or not transaction:
                with super().cursor(transaction) as cur:
                    yield cur
                return
            with self.lock:
                self.setup()
                cur = self.conn.cursor()
                try:
                    cur.execute("BEGIN IMMEDIATE")  # the write lock first, as every write of the records takes it
                    fence.check(Transaction(dialect, cur))
                    yield cur
                    self.conn.commit()
                except BaseException:
                    self.conn.rollback()
                    raise
                finally:
                    cur.close()

    return FencedSqliteSaver(conn)


def _postgres_saver(pool: Any, dialect: Any) -> BaseCheckpointSaver:
    from langgraph.checkpoint.postgres import PostgresSaver, _internal
    from psycopg.rows import dict_row, tuple_row

    class FencedPostgresSaver(PostgresSaver):
        @contextmanager
        def _cursor(self, *, pipeline: bool = False) -> Iterator[Any]:
            fence = current_fence()
            if fence is None or not pipeline:  # writes (put, put_writes, delete_thread) ask for a pipeline
                with super()._cursor(pipeline=pipeline) as cur:
                    yield cur
                return
            with self.lock, _internal.get_connection(self.conn) as conn, conn.transaction():
                with conn.cursor(row_factory=tuple_row) as check:  # locks the mission row until the commit
                    fence.check(Transaction(dialect, check))
                with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    return FencedPostgresSaver(pool)
