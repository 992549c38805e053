"""Engine and sessions for the configured database (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import ConfigError

__all__ = ["make_engine", "engine_for", "session_scope", "is_sqlite", "sqlite_writer_lock", "WriterLock", "WritingConnection",
           "WriteBusy", "write_now"]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


class WriterLock:
    """The turn to write a SQLite file, among the threads of this process.

    SQLite lets one connection write at a time; a connection that finds the file locked sleeps in steps of up
    to 100 ms before trying again (its busy handler), so with dozens of missions writing from one process most
    of a write's latency was sleeping while the lock was already free. Writers of this process queue here
    instead and are woken the moment the previous one commits; the busy handler still arbitrates between
    processes. The lock is taken before ``BEGIN IMMEDIATE`` and given back after ``COMMIT`` or ``ROLLBACK``;
    a thread that waits longer than SQLite's own busy timeout gets the error SQLite would have given.
    """

    def __init__(self, timeout_s: float = 30.0) -> None:
        self._lock = threading.Lock()
        self.timeout_s = timeout_s

    def acquire(self) -> None:
        if not self._lock.acquire(timeout=self.timeout_s):
            raise sqlite3.OperationalError(f"database is locked (no write turn in {self.timeout_s:.0f} s)")

    def try_acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_WRITER_LOCKS: dict[str, WriterLock] = {}
_WRITER_LOCKS_GUARD = threading.Lock()


def sqlite_writer_lock(path: str) -> WriterLock:
    """The process's writer lock for the SQLite file at ``path`` (shared by its engine and its checkpointer)."""
    key = str(Path(path).resolve()) if path and path != ":memory:" else path
    with _WRITER_LOCKS_GUARD:
        return _WRITER_LOCKS.setdefault(key, WriterLock())


class WriteBusy(Exception):
    """The write could not begin at once (another thread or process is writing) and the caller asked not to
    wait (:func:`write_now`): nothing was written."""


_NO_WAIT: ContextVar[bool] = ContextVar("orchestrator_sqlite_no_wait", default=False)


@contextmanager
def write_now() -> Iterator[None]:
    """SQLite write transactions begun in this context begin at once or raise :class:`WriteBusy`, never wait
    for another writer (for work done on an event loop, which must not block: it goes to a thread instead)."""
    token = _NO_WAIT.set(True)
    try:
        yield
    finally:
        _NO_WAIT.reset(token)


class WritingConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take the process's :class:`WriterLock` for its file first
    (:meth:`begin_write`) and give it back when they end, however they end."""

    writer_lock: WriterLock
    holds_write_lock = False

    def begin_write(self, begin: Callable[[], object] | None = None) -> None:
        """``BEGIN IMMEDIATE`` (run by ``begin`` when given) once this thread has the process's turn to write;
        under :func:`write_now`, at once or :class:`WriteBusy`."""
        if _NO_WAIT.get():
            self._begin_now(begin)
            return
        self.writer_lock.acquire()
        try:
            begin() if begin is not None else self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.writer_lock.release()
            raise
        self.holds_write_lock = True

    def _begin_now(self, begin: Callable[[], object] | None) -> None:
        if not self.writer_lock.try_acquire():
            raise WriteBusy("another thread of this process is writing")
        timeout = self.execute("PRAGMA busy_timeout").fetchone()[0]
        self.execute("PRAGMA busy_timeout=0")  # another process's write: SQLITE_BUSY at once, no sleeping
        try:
            begin() if begin is not None else self.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # SQLAlchemy's begin wraps the driver's error (its .orig)
            self.writer_lock.release()
            if isinstance(getattr(exc, "orig", exc), sqlite3.OperationalError) and "locked" in str(exc):
                raise WriteBusy(f"another process is writing ({exc})") from exc
            raise
        except BaseException:
            self.writer_lock.release()
            raise
        finally:
            self.execute(f"PRAGMA busy_timeout={int(timeout)}")
        self.holds_write_lock = True

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def _release(self) -> None:
        if self.holds_write_lock:
            self.holds_write_lock = False
            self.writer_lock.release()


def _connection_class(lock: WriterLock) -> type[WritingConnection]:
    return type("WritingConnection", (WritingConnection,), {"writer_lock": lock})


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout, foreign keys and write-serialising transactions."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"ORCH_DATABASE_URL {url!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        lock = sqlite_writer_lock(parsed.database or ":memory:")
        # A file database keeps as many idle connections as the API's worker threads use at once (anyio's
        # default, 40): opening one (file, WAL index, four pragmas) cost more than the read it served.
        pool = {"pool_size": 40, "max_overflow": 40} if parsed.database and parsed.database != ":memory:" else {}
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False,
                                                  "factory": _connection_class(lock)}, **pool)

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
            if readonly:
                conn.exec_driver_sql("BEGIN")
                return
            conn.connection.driver_connection.begin_write(lambda: conn.exec_driver_sql("BEGIN IMMEDIATE"))

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
