"""Starting a run the way ``/api/v1`` would: a thread's first run queues its mission on the runner's pool, a
resume decides the pending gate through the runner (same roles, same hash-bound rule)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.api.deps import DOES, GRANTS, OWN_MISSIONS_ONLY, Permission, Service
from orchestrator.api.keys import Caller
from orchestrator.api.langgraph.resume import decision_of, mission_text
from orchestrator.api.langgraph.schemas import THREAD_ID, RunCreate
from orchestrator.api.langgraph.trail import RunRecord, runs_of
from orchestrator.api.langgraph.views import ASSISTANT_ID, GRAPH_ID
from orchestrator.api.routers.workspaces import resolve_workspace
from orchestrator.db import session_scope
from orchestrator.db.approvals import pending_approvals
from orchestrator.db.missions import TERMINAL
from orchestrator.db.models import Mission, Thread
from orchestrator.db.threads import attach_mission, create_thread, get_thread
from orchestrator.errors import InputError, InvalidTransition, MissionNotFound
from orchestrator.mission import parse_mission

__all__ = ["Started", "require", "visible_thread", "start_run", "check_assistant"]

@dataclass(frozen=True)
class Started:
    """A run that was just started: its thread, its mission and its place on the trail."""

    thread_id: str
    mission_id: str
    run: RunRecord


def require(caller: Caller, permission: Permission) -> None:
    """Refuse (403) a caller whose role does not grant ``permission``, in ``/api/v1``'s words (a route here
    needs one permission or another depending on its body, so it cannot be a dependency)."""
    if permission not in GRANTS.get(caller.role, frozenset()):
        may = " or ".join(role for role, grants in GRANTS.items() if permission in grants)
        raise HTTPException(403, f"the {caller.role} role may not {DOES[permission]} "
                                 f"(key {caller.name!r}); a key with the {may} role may")


def check_assistant(assistant_id: str) -> None:
    if assistant_id not in (ASSISTANT_ID, GRAPH_ID):
        raise MissionNotFound(f"no assistant {assistant_id!r}: this server runs {GRAPH_ID!r} ({ASSISTANT_ID})")


def visible_thread(session: Session, caller: Caller, thread_id: str) -> Thread:
    """The thread, if the caller may see it (a submitter sees only its own; others get 404, not 403)."""
    thread = get_thread(session, thread_id)
    if caller.role in OWN_MISSIONS_ONLY and thread.owner != caller.name:
        raise MissionNotFound(f"no thread with id {thread_id!r}")
    return thread


def _refuse_unsupported(body: RunCreate) -> None:
    refusals = {
        "webhook": "webhooks are not offered: follow the run's stream, or poll the thread",
        "checkpoint": "runs from an earlier checkpoint are not offered: a mission's records only go forward",
        "checkpoint_id": "runs from an earlier checkpoint are not offered: a mission's records only go forward",
        "interrupt_before": "breakpoints are not offered: the procedure's human gates are its interrupts",
        "interrupt_after": "breakpoints are not offered: the procedure's human gates are its interrupts",
        "after_seconds": "delayed runs are not offered",
    }
    for field, why in refusals.items():
        if getattr(body, field):
            raise InputError(f"{field}: {why}")
    if body.command is not None and (body.command.goto is not None or body.command.update is not None):
        raise InputError("command.goto and command.update are not offered: the procedure decides where the graph "
                         "goes; a run sends a mission (input) or a decision (command.resume)")
    if body.command is not None and body.command.resume is not None and body.input is not None:
        raise InputError("a run sends either input (the mission) or command.resume (a decision), not both")
    check_assistant(body.assistant_id)


def _workspace(body: RunCreate, meta: dict[str, Any]) -> str:
    configurable = (body.config or {}).get("configurable") or {}
    for value in ((body.context or {}).get("workspace"), configurable.get("workspace"), meta.get("workspace")):
        if value:
            if not isinstance(value, str):
                raise InputError(f"workspace must be a directory name or path, not {value!r}")
            return value
    raise InputError("no workspace for the mission: pass context={'workspace': NAME} with the run, or create the "
                     "thread with metadata={'workspace': NAME} (a directory under the workspace roots; "
                     "POST /api/v1/workspaces creates one)")


def _refuse_busy(thread_id: str, mission: Mission) -> None:
    if mission.status in TERMINAL:
        raise InvalidTransition(f"thread {thread_id} ran mission {mission.id}, which is {mission.status}: a thread is "
                                "one mission; create a new thread for another one")
    if mission.status == "waiting_approval":
        raise InvalidTransition(f"thread {thread_id} is waiting for a decision on its gate: resume it with "
                                "command={'resume': {'decision': ..., 'payload_sha256': ..., 'comment': ...}}")
    raise InvalidTransition(f"thread {thread_id} has a run in progress (mission {mission.id} is {mission.status}): "
                            "join its stream instead of starting another (only multitask_strategy 'reject')")


def _create_mission(service: Service, caller: Caller, thread_id: str, text: str, workspace: Path) -> str:
    digest = hashlib.sha256(json.dumps({"text": text, "workspace": str(workspace), "owner": caller.name},
                                       sort_keys=True).encode()).hexdigest()
    try:
        # The thread's id is the mission's idempotency key: two first runs racing make one mission.
        created = service.runner.create(text, workspace=workspace, owner=caller.name,
                                        idempotency_key=f"langgraph-thread:{thread_id}", request_sha256=digest)
    except IntegrityError:
        raise InvalidTransition(f"another run of thread {thread_id} started its mission first") from None
    with session_scope(service.url) as session:
        if not attach_mission(session, thread_id=thread_id, mission_id=created.id):
            raise InvalidTransition(f"another run of thread {thread_id} started its mission first")
    return created.id


def _decide(service: Service, caller: Caller, thread: Thread, resume: Any) -> str:
    if thread.mission_id is None:
        raise InvalidTransition(f"thread {thread.thread_id} has no mission yet: its first run sends the mission "
                                "as input, there is nothing to resume")
    with session_scope(service.url, readonly=True) as session:
        pending = [row.id for row in pending_approvals(session, mission_id=thread.mission_id)]
    decision = decision_of(resume, pending=pending)
    service.runner.decide(thread.mission_id, decision=decision.decision, actor=caller.name,
                          comment=decision.comment,
                          approval_id=decision.approval_id, quoted_sha256=decision.payload_sha256)
    return thread.mission_id


def start_run(service: Service, caller: Caller, thread_id: str | None, body: RunCreate) -> Started:
    """Start a run on the thread (a new thread when ``thread_id`` is None, or when it does not exist and the
    run says ``if_not_exists='create'``); returns where it starts on the trail. Bad input writes nothing."""
    _refuse_unsupported(body)
    resuming = body.command is not None and body.command.resume is not None
    require(caller, "approval.decide" if resuming else "mission.create")
    with session_scope(service.url, readonly=True) as session:
        thread = session.get(Thread, thread_id) if thread_id is not None else None
        if thread is None and thread_id is not None and (resuming or body.if_not_exists != "create"):
            raise MissionNotFound(f"no thread with id {thread_id!r}")
        if thread is not None:
            thread = visible_thread(session, caller, thread.thread_id)
        mission = session.get(Mission, thread.mission_id) if thread is not None and thread.mission_id else None
        session.expunge_all()
    if resuming:
        assert thread is not None
        mission_id = _decide(service, caller, thread, body.command.resume)  # type: ignore[union-attr]
    else:
        if thread is not None and mission is not None:
            _refuse_busy(thread.thread_id, mission)
        text = mission_text(body.input)
        parse_mission(text)  # a mission that cannot be used is refused before its thread is made
        workspace = resolve_workspace(service.settings, _workspace(body, thread.meta if thread else
                                                                   dict(body.metadata or {})))
        if thread is None:
            if thread_id is not None and not re.match(THREAD_ID, thread_id):
                raise InputError(f"thread id {thread_id[:80]!r} is not one a thread can have ({THREAD_ID})")
            with session_scope(service.url) as session:
                thread = create_thread(session, owner=caller.name, meta=dict(body.metadata or {}),
                                       thread_id=thread_id)
                session.expunge(thread)
        mission_id = _create_mission(service, caller, thread.thread_id, text, workspace)
    if service.pool is not None:
        service.pool.wake()
    with session_scope(service.url, readonly=True) as session:
        run = runs_of(session, mission_id)[-1]
    return Started(thread_id=thread.thread_id, mission_id=mission_id, run=run)
