"""Shared fixtures: settings on a temporary home, databases (SQLite and PostgreSQL), tool contexts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.db import session_scope
from orchestrator.db.missions import create_mission
from orchestrator.db.schema import upgrade
from orchestrator.recorder import DatabaseRecorder
from tests.support.databases import create_pg_database, drop_pg_database
from tools.context import ToolContext


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at the end)."""
    url, name = create_pg_database()
    upgrade(url)
    yield url
    from orchestrator.db.engine import engine_for

    engine_for(url).dispose()
    drop_pg_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL, schema at head."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    url = f"sqlite:///{tmp_path / 'orchestrator.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'orchestrator.db'}"
    upgrade(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings(home=tmp_path / "home", database_url=sqlite_url, _env_file=None)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture
def tool_ctx(workspace: Path, settings: Settings) -> ToolContext:
    """A ToolContext on an empty workspace of a real mission row; artifacts land in the database."""
    url = settings.resolved_database_url
    with session_scope(url) as session:
        mission_id = create_mission(session, text="Mission: test", spec={"objective": "test"},
                                    workspace=str(workspace)).id
    return ToolContext(workspace=workspace, mission_id=mission_id, agent="ml-engineer", step="implement",
                       settings=settings, recorder=DatabaseRecorder(url, mission_id, agent="ml-engineer",
                                                                    step="implement"))
