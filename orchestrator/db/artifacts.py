"""Artifacts and tasks: what the agents produced and what they are tracking."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.audit import append_event
from orchestrator.db.models import Artifact, Task, utcnow
from orchestrator.errors import ToolError

__all__ = ["record_artifact", "create_task", "update_task", "list_tasks", "task_dict", "TASK_STATUSES"]

TASK_STATUSES = ("open", "in_progress", "done", "blocked", "cancelled")


def record_artifact(session: Session, *, mission_id: str, path: str, sha256: str, size: int, kind: str,
                    agent: str, step: str, call_id: str | None = None) -> Artifact:
    """Record (or update) the latest version of a workspace file, with its producer.

    The same version recorded again by the same call (a call retried after a crash) is already on the record:
    nothing is added."""
    row = session.scalar(select(Artifact).where(Artifact.mission_id == mission_id, Artifact.path == path))
    if row is not None and call_id is not None and (row.call_id, row.sha256) == (call_id, sha256):
        return row
    if row is None:
        row = Artifact(mission_id=mission_id, path=path, sha256=sha256, size=size, kind=kind, agent=agent, step=step,
                       call_id=call_id)
        session.add(row)
    else:
        row.sha256, row.size, row.kind, row.agent, row.step, row.created_at = sha256, size, kind, agent, step, utcnow()
        row.call_id = call_id
    session.flush()
    append_event(session, mission_id=mission_id, kind="artifact.written", actor=agent, step=step,
                 payload={"path": path, "sha256": sha256, "size": size, "kind": kind})
    return row


def task_dict(task: Task) -> dict[str, Any]:
    return {"id": task.id, "title": task.title, "status": task.status, "agent": task.agent, "step": task.step,
            "notes": task.notes, "links": list(task.links or [])}


def create_task(session: Session, *, mission_id: str, title: str, agent: str, step: str, notes: str = "",
                links: list[str] | None = None, call_id: str | None = None) -> Task:
    """A new task; the call that created one already (retried after a crash) gets that task back."""
    if not title.strip():
        raise ToolError("a task needs a title")
    if call_id is not None:
        existing = session.scalar(select(Task).where(Task.mission_id == mission_id, Task.call_id == call_id))
        if existing is not None:
            return existing
    row = Task(mission_id=mission_id, title=title, agent=agent, step=step, notes=notes, links=list(links or []),
               call_id=call_id)
    session.add(row)
    session.flush()
    append_event(session, mission_id=mission_id, kind="task.created", actor=agent, step=step, payload=task_dict(row))
    return row


def update_task(session: Session, *, mission_id: str, task_id: int, actor: str, step: str,
                status: str | None = None, notes: str | None = None, links: list[str] | None = None,
                call_id: str | None = None) -> Task:
    """Apply an update; the same call's update, retried after a crash, is already applied and recorded."""
    row = session.get(Task, task_id)
    if row is None or row.mission_id != mission_id:
        raise ToolError(f"task {task_id} does not exist in this mission; call task_list to see the tasks")
    if call_id is not None and row.updated_by_call == call_id:
        return row
    if status is not None:
        if status not in TASK_STATUSES:
            raise ToolError(f"task status {status!r} is not one of {', '.join(TASK_STATUSES)}")
        row.status = status
    if notes is not None:
        row.notes = notes
    if links:
        row.links = [*(row.links or []), *[link for link in links if link not in (row.links or [])]]
    row.updated_by_call = call_id
    session.flush()
    append_event(session, mission_id=mission_id, kind="task.updated", actor=actor, step=step, payload=task_dict(row))
    return row


def list_tasks(session: Session, *, mission_id: str) -> list[Task]:
    return list(session.scalars(select(Task).where(Task.mission_id == mission_id).order_by(Task.id)))
