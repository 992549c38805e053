"""Shared fixtures. PROVISIONAL: the core engine replaces the in-memory recorder with the database one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import Settings
from tools.context import ToolContext


class _ListRecorder:
    def __init__(self) -> None:
        self.artifacts: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []

    def artifact(self, **row: Any) -> None:
        self.artifacts.append(row)

    def task_create(self, *, title: str, agent: str, step: str, notes: str = "", links: list[str] | None = None) -> dict[str, Any]:
        task = {"id": len(self.tasks) + 1, "title": title, "status": "open", "agent": agent, "step": step,
                "notes": notes, "links": list(links or [])}
        self.tasks.append(task)
        return dict(task)

    def task_update(self, *, task_id: int, status: str | None = None, notes: str | None = None, links: list[str] | None = None) -> dict[str, Any]:
        task = self.tasks[task_id - 1]
        if status is not None:
            task["status"] = status
        if notes is not None:
            task["notes"] = notes
        if links:
            task["links"] += links
        return dict(task)

    def task_list(self) -> list[dict[str, Any]]:
        return [dict(t) for t in self.tasks]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", _env_file=None)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture
def tool_ctx(workspace: Path, settings: Settings) -> ToolContext:
    """A ToolContext on an empty workspace; recorded artifacts: ``recorded_artifacts(ctx)``."""
    return ToolContext(workspace=workspace, mission_id="m-test", agent="ml-engineer", step="implement",
                       settings=settings, recorder=_ListRecorder())

