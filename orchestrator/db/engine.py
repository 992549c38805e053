"""Engine and sessions for the configured database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import ConfigError

__all__ = ["make_engine", "engine_for", "session_scope", "is_sqlite"]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, foreign keys and write-serialising transactions."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"ORCH_DATABASE_URL {url!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (see SQLAlchemy's pysqlite notes).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
            # Writers take the write lock up front: the audit chain reads the last hash and appends in one
            # transaction, and a deferred transaction would fail instead of waiting when two processes race.
            # Read-only scopes begin deferred and never block a writer (WAL).
            readonly = conn.get_execution_options().get("orch_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("psycopg2", "") and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    raise ConfigError(f"database {parsed.get_backend_name()!r} is not supported: use sqlite:/// or postgresql://")


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process."""
    return make_engine(url)


@lru_cache(maxsize=16)
def _factory(url: str, readonly: bool) -> sessionmaker[Session]:
    engine = engine_for(url)
    return sessionmaker(engine.execution_options(orch_readonly=True) if readonly else engine, expire_on_commit=False)


@contextmanager
def session_scope(url: str, *, readonly: bool = False) -> Iterator[Session]:
    """A session committed on success and rolled back on error; ``readonly`` ones take no write lock."""
    session = _factory(url, readonly)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
