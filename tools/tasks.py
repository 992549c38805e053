"""The ``Task`` capability: a mission's shared task list, kept by the recorder."""

from __future__ import annotations

import json
from typing import Literal

from langchain_core.tools import tool

from orchestrator.errors import ToolError
from tools.context import Ctx

__all__ = ["TaskStatus", "task_create", "task_update", "task_list", "CAPABILITIES"]

# SkipValidation: pydantic cannot (and must not) rebuild the context; the tool needs the caller's object.

TaskStatus = Literal["open", "in_progress", "done", "blocked", "cancelled"]


@tool(parse_docstring=True)
def task_create(title: str, notes: str = "", links: list[str] | None = None, *, ctx: Ctx) -> str:
    """Add a task to the mission's shared task list, owned by you, with status `open`; returns it as JSON with its id.

    Args:
        title: What has to be done, as a short imperative sentence.
        notes: Context, acceptance criteria or findings.
        links: Related workspace paths or URLs, e.g. `["reports/evaluation.md"]`.
    """
    if not title.strip():
        raise ToolError("title is empty: say what has to be done")
    task = ctx.recorder.task_create(title=title.strip(), agent=ctx.agent, step=ctx.step, notes=notes,
                                    links=list(links or []))
    return json.dumps(task, default=str)


@tool(parse_docstring=True)
def task_update(task_id: int, status: TaskStatus, notes: str | None = None, links: list[str] | None = None,
                *, ctx: Ctx) -> str:
    """Change a task's status, and optionally replace its notes or add links; returns the task as JSON.

    Args:
        task_id: The id returned by task_create or shown by task_list.
        status: The new status: open, in_progress, done, blocked or cancelled.
        notes: New notes replacing the old ones (omit to keep them).
        links: Workspace paths or URLs to add to the task's links.
    """
    known = {task["id"] for task in ctx.recorder.task_list()}
    if task_id not in known:
        raise ToolError(f"no task with id {task_id!r}; existing ids: {sorted(known) or 'none'} (see task_list)")
    task = ctx.recorder.task_update(task_id=task_id, status=status, notes=notes, links=links)
    return json.dumps(task, default=str)


@tool(parse_docstring=True)
def task_list(*, ctx: Ctx) -> str:
    """List every task of the mission with its id, status, owner, notes and links, as JSON `{"tasks": [...]}`.

    Args:
        ctx: The run context, injected by the orchestrator (not a model argument).
    """
    return json.dumps({"tasks": ctx.recorder.task_list()}, default=str)


CAPABILITIES = {"Task": [task_create, task_update, task_list]}
