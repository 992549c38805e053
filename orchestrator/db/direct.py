"""Hot-path statements, run on the DBAPI cursor of the caller's own transaction.

Every step of every mission writes a handful of rows: journal turns, tool calls, audit events, step
transitions. Through SQLAlchemy's Core each statement costs about 30 µs of Python, on the driver's cursor
about 8 µs (``bench/graph_overhead.py`` measures the whole path). The SQL is written once, with ``:name``
placeholders; values go through the columns' own SQLAlchemy type processors, so a row written here is
what the ORM would have written, and reads back the same through the models. The transaction stays the
session's: these statements commit or roll back with everything else the caller wrote.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

__all__ = ["Statement"]

_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Processor], ...]
    results: tuple[Processor, ...]


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

        binds = tuple((name, types(col).bind_processor(dialect)) for name, col in self.columns.items())
        results = tuple(types(col).result_processor(dialect, None) for col in self.returns)
        return _Compiled(sql, binds, results)

    def run(self, session: Session, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute in the session's transaction (beginning it if needed); returns the converted rows."""
        conn = session.connection()
        compiled = self._by_dialect.get(conn.dialect.name)
        if compiled is None:
            compiled = self._by_dialect[conn.dialect.name] = self._compile(conn.dialect)
        params = {name: (value if (value := values[name]) is None or proc is None else proc(value))
                  for name, proc in compiled.binds}
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall() if compiled.results else []
        finally:
            cursor.close()
        return [tuple(value if proc is None else proc(value) for proc, value in zip(compiled.results, row, strict=True))
                for row in rows]
