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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from orchestrator.db.engine import engine_for

__all__ = ["Statement", "Transaction", "Writer", "transaction", "dialect_name"]

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
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            dbapi.execute("BEGIN IMMEDIATE")
        cursor = dbapi.cursor()
        try:
            yield Transaction(engine.dialect, cursor)
        except BaseException:
            cursor.close()
            dbapi.rollback()
            raise
        cursor.close()
        if sqlite:
            dbapi.execute("COMMIT")
        else:
            dbapi.commit()
    finally:
        pooled.close()




def dialect_name(writer: Writer) -> str:
    return writer.dialect.name if isinstance(writer, Transaction) else writer.get_bind().dialect.name


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
        results = tuple(types(col).result_processor(dialect, None) for col in self.returns)
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
