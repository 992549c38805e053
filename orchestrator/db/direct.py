"""Hot-path statements, run on the DBAPI cursor of the caller's own transaction.

Every step of every mission writes a handful of rows: journal turns, tool calls, audit events, step
transitions. Through SQLAlchemy's Core each statement costs about 30 µs of Python, on the driver's cursor
about 8 µs (``bench/graph_overhead.py`` measures the whole path). The SQL is written once, with ``:name``
placeholders; values go through the columns' own SQLAlchemy type processors, so a row written here is
what the ORM would have written, and reads back the same through the models.

A statement runs in the caller's transaction: a :class:`~sqlalchemy.orm.Session`'s (it commits or rolls
back with everything else the session wrote), or a :func:`transaction` of its own on a pooled connection,
for the writes that need nothing but these statements (a Session costs about 60 µs more per transaction).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, Table, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session, SessionTransaction

from orchestrator.db.engine import engine_for
from orchestrator.errors import OrchestratorError

__all__ = ["Statement", "Transaction", "Writer", "transaction", "reading", "dialect_name", "Fence", "LeaseLost", "fenced",
           "current_fence"]

_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
Processor = Callable[[Any], Any] | None


@dataclass
class Transaction:
    """A write transaction held directly on a pooled DBAPI connection."""

    dialect: Dialect
    cursor: Any
    """A cursor of the driver's connection (``sqlite3``, ``psycopg``), for all the transaction's statements."""
    info: dict[str, Any] = field(default_factory=dict)
    """Scratch space that lives as long as the transaction (like ``Session.info``)."""


Writer = Session | Transaction
"""Where a direct statement runs: a session's transaction or a direct one."""


@contextmanager
def transaction(url: str) -> Iterator[Transaction]:
    """A write transaction on the database at ``url``: committed on success, rolled back on error.

    SQLite takes the write lock up front (``BEGIN IMMEDIATE``), as the engine's sessions do.
    """
    engine = engine_for(url)
    pooled = engine.raw_connection()
    try:
        dbapi = pooled.driver_connection
        if engine.dialect.name == "sqlite":
            dbapi.begin_write()  # the process's turn to write first (orchestrator.db.engine.WriterLock)
        cursor = dbapi.cursor()
        try:
            tx = Transaction(engine.dialect, cursor)
            if (fence := _FENCE.get()) is not None:
                fence.check(tx)
            yield tx
        except BaseException:
            cursor.close()
            dbapi.rollback()
            raise
        cursor.close()
        dbapi.commit()
    finally:
        pooled.close()


@contextmanager
def reading(url: str) -> Iterator[Transaction]:
    """A read-only transaction for direct statements (one snapshot on SQLite, where it takes no write lock;
    no Session: a read of a few rows costs less than opening one)."""
    engine = engine_for(url)
    pooled = engine.raw_connection()
    try:
        dbapi = pooled.driver_connection
        if engine.dialect.name == "sqlite":
            dbapi.execute("BEGIN")
        cursor = dbapi.cursor()
        try:
            yield Transaction(engine.dialect, cursor)
        finally:
            cursor.close()
            dbapi.rollback()
    finally:
        pooled.close()


def dialect_name(writer: Writer) -> str:
    return writer.dialect.name if isinstance(writer, Transaction) else writer.get_bind().dialect.name


class LeaseLost(OrchestratorError):
    """This runner no longer holds the mission's lease (another claimed it, or it ran out unrenewed): it must
    stop without writing anything more."""


@dataclass
class Fence:
    """The lease a runner holds on a mission, as every one of its write transactions checks it.

    Each claim of a mission increments its ``lease_epoch``. While a run is :func:`fenced`, every write
    transaction (direct, or a session's) first reads the mission's lease holder and epoch, locking the row on
    PostgreSQL (so a concurrent claim waits for this transaction to end; SQLite's write lock does the same),
    and raises :class:`LeaseLost`, writing nothing, when they are no longer this runner's.
    """

    mission_id: str
    worker: str
    epoch: int | None
    """The epoch of this runner's claim (None: the holder alone is checked)."""
    lost: threading.Event = field(default_factory=threading.Event)
    """Set when the lease is known to be gone (a renewal found it taken, or none succeeded for a whole lease):
    from then on no transaction even begins."""

    def ensure_held(self) -> None:
        """Raise :class:`LeaseLost` if the lease is known to be lost (no database read: between actions)."""
        if self.lost.is_set():
            raise LeaseLost(f"mission {self.mission_id}: the lease of this runner ({self.worker}, epoch "
                            f"{self.epoch}) is lost; it stops without writing")

    def check(self, writer: Writer) -> None:
        """Raise :class:`LeaseLost` unless the mission's lease is still this runner's, in ``writer``'s transaction."""
        self.ensure_held()
        read = _LEASE if dialect_name(writer) == "sqlite" else _LEASE_LOCKED
        rows = read.run(writer, {"id": self.mission_id})
        owner, epoch = rows[0] if rows else (None, None)
        if owner != self.worker or (self.epoch is not None and epoch != self.epoch):
            self.lost.set()
            raise LeaseLost(f"mission {self.mission_id}: this runner ({self.worker}) claimed it at lease epoch "
                            f"{self.epoch}; it is now held by {owner or 'nobody'} at epoch {epoch}, so this "
                            "runner stops without writing")


_FENCE: ContextVar[Fence | None] = ContextVar("orchestrator_fence", default=None)


@contextmanager
def fenced(fence: Fence) -> Iterator[Fence]:
    """Check ``fence`` in every write transaction begun in this context (LangGraph carries the context into
    the threads that run nodes and tools)."""
    token = _FENCE.set(fence)
    try:
        yield fence
    finally:
        _FENCE.reset(token)


def current_fence() -> Fence | None:
    """The fence of the run in progress in this context, if any (to check before an action that is no write)."""
    return _FENCE.get()


@event.listens_for(Session, "after_begin")
def _fence_session(_session: Session, _transaction: SessionTransaction, connection: Connection) -> None:
    fence = _FENCE.get()
    if fence is None or connection.get_execution_options().get("orch_readonly", False):
        return
    cursor = connection.connection.driver_connection.cursor()
    try:
        fence.check(Transaction(connection.dialect, cursor))
    finally:
        cursor.close()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Processor], ...]
    """Only the parameters whose type converts values; the others are passed as they are."""
    results: tuple[Processor, ...]
    convert_results: bool


class Statement:
    """One SQL statement over one table, compiled per dialect on first use.

    ``params`` maps a placeholder to the column whose type converts its value, when their names differ;
    ``returns`` names the columns the statement's rows hold (a ``SELECT`` list or ``RETURNING``), in order.
    """

    def __init__(self, sql: str, table: Table, *, params: Mapping[str, str] | None = None,
                 returns: Sequence[str] = ()) -> None:
        self.sql = " ".join(sql.split())
        self.table = table
        self.names = tuple(dict.fromkeys(_PLACEHOLDER.findall(self.sql)))
        self.columns = {name: (params or {}).get(name, name) for name in self.names}
        unknown = [col for col in (*self.columns.values(), *returns) if col not in table.c]
        if unknown:
            raise ValueError(f"{table.name} has no column {', '.join(unknown)} (statement: {self.sql})")
        self.returns = tuple(returns)
        self._by_dialect: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        if dialect.name == "sqlite":  # the sqlite3 module takes :name placeholders itself
            sql = self.sql
        elif dialect.name == "postgresql":  # psycopg takes %(name)s
            sql = _PLACEHOLDER.sub(r"%(\1)s", self.sql.replace("%", "%%"))
        else:
            raise NotImplementedError(f"direct statements do not support {dialect.name}")

        def types(column: str):  # noqa: ANN202
            return self.table.c[column].type.dialect_impl(dialect)

        binds = tuple((name, proc) for name, col in self.columns.items()
                      if (proc := types(col).bind_processor(dialect)) is not None)
        def result(column: str) -> Processor:
            kind = types(column)
            if isinstance(kind, Float) and not kind.asdecimal:  # both drivers hand back floats already, and
                return None  # psycopg's processor needs the column's type code, which a cursor does not pass here
            return kind.result_processor(dialect, None)

        results = tuple(result(col) for col in self.returns)
        return _Compiled(sql, binds, results, any(proc is not None for proc in results))

    def run(self, writer: Writer, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute in the writer's transaction (a session begins one if needed); returns the converted rows.

        ``values`` may hold more keys than the statement's placeholders; the drivers read only theirs.
        """
        if isinstance(writer, Transaction):
            dialect, cursor, own = writer.dialect, writer.cursor, False
        else:
            conn = writer.connection()
            dialect, cursor, own = conn.dialect, conn.connection.driver_connection.cursor(), True
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = self._compile(dialect)
        params = values
        if compiled.binds:
            params = dict(values)
            for name, proc in compiled.binds:
                if (value := params[name]) is not None:
                    params[name] = proc(value)
        try:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall() if compiled.results else []
        finally:
            if own:
                cursor.close()
        if not compiled.convert_results:
            return rows
        return [tuple(value if proc is None else proc(value)
                      for proc, value in zip(compiled.results, row, strict=True)) for row in rows]


def _lease_statement(suffix: str) -> Statement:
    from orchestrator.db.models import Mission  # the models import nothing of this module; keep it that way

    return Statement("SELECT lease_owner, lease_epoch FROM missions WHERE id = :id" + suffix, Mission.__table__,
                     returns=("lease_owner", "lease_epoch"))


_LEASE = _lease_statement("")
_LEASE_LOCKED = _lease_statement(" FOR UPDATE")
