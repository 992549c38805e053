"""Test databases: a SQLite file per test, or a PostgreSQL database per test session on the local server."""

from __future__ import annotations

import os
import uuid

PG_ADMIN_DSN = os.environ.get("ORCH_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def create_pg_database() -> tuple[str, str]:
    """Create a fresh PostgreSQL database; returns (SQLAlchemy URL, name)."""
    import psycopg

    name = f"orch_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}", name


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
