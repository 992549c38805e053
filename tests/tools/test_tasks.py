"""Task tools: create, update and list through the recorder."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from orchestrator.errors import ToolError
from tools.context import ToolContext
from tools.tasks import task_create, task_list, task_update


def call(tool, ctx: ToolContext, **args) -> dict:  # noqa: ANN001, ANN003
    return json.loads(tool.invoke({**args, "ctx": ctx}))


def test_create_update_list(tool_ctx: ToolContext) -> None:
    task = call(task_create, tool_ctx, title="Align features", notes="train vs serving", links=["data/a.csv"])
    assert (task["id"], task["status"], task["agent"], task["step"]) == (1, "open", "ml-engineer", "implement")
    updated = call(task_update, tool_ctx, task_id=1, status="done", links=["reports/align.md"])
    assert updated["status"] == "done" and updated["links"] == ["data/a.csv", "reports/align.md"]
    assert updated["notes"] == "train vs serving"
    listed = call(task_list, tool_ctx)
    assert [(t["id"], t["title"], t["status"]) for t in listed["tasks"]] == [(1, "Align features", "done")]


def test_unknown_task_and_bad_status_are_refused(tool_ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="no task with id 7"):
        call(task_update, tool_ctx, task_id=7, status="done")
    call(task_create, tool_ctx, title="x")
    with pytest.raises(ValidationError):
        call(task_update, tool_ctx, task_id=1, status="finished")
    with pytest.raises(ToolError, match="title is empty"):
        call(task_create, tool_ctx, title="  ")


def test_status_is_a_closed_set_in_the_schema() -> None:
    schema = task_update.tool_call_schema.model_json_schema()
    assert schema["properties"]["status"]["enum"] == ["open", "in_progress", "done", "blocked", "cancelled"]
    assert "ctx" not in schema["properties"]
