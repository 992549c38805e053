"""The database-backed :class:`tools.context.Recorder`: what tools record lands in the mission's rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.db import session_scope
from orchestrator.db.artifacts import create_task, list_tasks, record_artifact, task_dict, update_task

__all__ = ["DatabaseRecorder"]


@dataclass
class DatabaseRecorder:
    """Records artifacts and tasks of one mission, each in its own short transaction with its audit event.

    Records made for a tool call carry its ``call_id``: the call retried after a crash finds them and adds
    nothing twice."""

    database_url: str
    mission_id: str
    agent: str = "system"
    step: str = "align"
    call_id: str | None = None

    def artifact(self, *, path: str, sha256: str, size: int, kind: str, agent: str, step: str) -> None:
        with session_scope(self.database_url) as session:
            record_artifact(session, mission_id=self.mission_id, path=path, sha256=sha256, size=size, kind=kind,
                            agent=agent, step=step, call_id=self.call_id)

    def task_create(self, *, title: str, agent: str, step: str, notes: str = "",
                    links: list[str] | None = None) -> dict[str, Any]:
        with session_scope(self.database_url) as session:
            return task_dict(create_task(session, mission_id=self.mission_id, title=title, agent=agent, step=step,
                                         notes=notes, links=links, call_id=self.call_id))

    def task_update(self, *, task_id: int, status: str | None = None, notes: str | None = None,
                    links: list[str] | None = None) -> dict[str, Any]:
        with session_scope(self.database_url) as session:
            return task_dict(update_task(session, mission_id=self.mission_id, task_id=task_id, actor=self.agent,
                                         step=self.step, status=status, notes=notes, links=links,
                                         call_id=self.call_id))

    def task_list(self) -> list[dict[str, Any]]:
        with session_scope(self.database_url) as session:
            return [task_dict(task) for task in list_tasks(session, mission_id=self.mission_id)]
