"""Threads: a client's conversation with the procedure, which is one mission once its first run starts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from orchestrator.api.deps import OWN_MISSIONS_ONLY, Actor, Creator, Reader, Service, ServiceDep
from orchestrator.api.keys import Caller
from orchestrator.api.langgraph.launch import visible_thread
from orchestrator.api.langgraph.schemas import HistoryRequest, ThreadCreate, ThreadPatch, ThreadSearch
from orchestrator.api.langgraph.streaming import read_state
from orchestrator.api.langgraph.views import empty_state, state_view, statuses_of, thread_view
from orchestrator.api.problems import PROBLEM_RESPONSES
from orchestrator.db import session_scope
from orchestrator.db import threads as records
from orchestrator.db.models import Mission, Thread
from orchestrator.errors import InputError

__all__ = ["router", "read_thread_view"]

router = APIRouter(prefix="/threads", tags=["langgraph: threads"], responses=PROBLEM_RESPONSES)


def _with_mission(session: Session, caller: Caller, thread_id: str) -> tuple[Thread, Mission | None]:
    thread = visible_thread(session, caller, thread_id)
    mission = session.get(Mission, thread.mission_id) if thread.mission_id else None
    session.expunge_all()
    return thread, mission


def read_thread_view(service: Service, caller: Caller, thread_id: str) -> dict[str, Any]:
    with session_scope(service.url, readonly=True) as session:
        thread, mission = _with_mission(session, caller, thread_id)
    state = read_state(service, thread.thread_id, mission.id) if mission is not None else None
    return thread_view(thread, mission, state)


@router.post("", response_model=dict[str, Any])
def create_thread(body: ThreadCreate, service: ServiceDep, caller: Creator) -> dict[str, Any]:
    """Create a thread; its first run (input: the mission as messages) creates its mission."""
    if body.supersteps:
        raise InputError("supersteps are not offered: a thread's state comes from its mission's runs only")
    if body.ttl is not None:
        raise InputError("ttl is not offered: threads are the records of missions and are kept")
    with session_scope(service.url) as session:
        row = records.create_thread(session, owner=caller.name, meta=body.metadata, thread_id=body.thread_id,
                            if_exists=body.if_exists)
        thread_id = row.thread_id
    return read_thread_view(service, caller, thread_id)


@router.post("/search", response_model=list[dict[str, Any]])
def search_threads(body: ThreadSearch, service: ServiceDep, caller: Reader) -> list[dict[str, Any]]:
    """Threads by metadata, ids and status, newest first unless sorted otherwise."""
    if body.values:
        raise InputError("filtering threads by their state's values is not offered; filter by metadata or status")
    statuses, unstarted = statuses_of(body.status) if body.status else (None, True)
    sort_by = "updated_at" if body.sort_by == "state_updated_at" else (body.sort_by or "created_at")
    with session_scope(service.url, readonly=True) as session:
        owner = caller.name if caller.role in OWN_MISSIONS_ONLY else None
        stmt = records.search_threads(session, owner=owner, ids=body.ids, mission_statuses=statuses,
                                      include_unstarted=unstarted, sort_by=sort_by,
                                      descending=body.sort_order != "asc")
        rows = [(thread, mission) for thread, mission in session.execute(stmt).all()
                if all(thread_view(thread, mission, None)["metadata"].get(key) == value
                       for key, value in (body.metadata or {}).items())]
        page = rows[body.offset:body.offset + body.limit]
        session.expunge_all()
    return [thread_view(thread, mission,
                        read_state(service, thread.thread_id, mission.id) if mission is not None else None)
            for thread, mission in page]


@router.get("/{thread_id}", response_model=dict[str, Any])
def read_thread(thread_id: str, service: ServiceDep, caller: Reader) -> dict[str, Any]:
    """The thread: metadata (with its mission's id), status (from the mission's), state values, interrupts."""
    return read_thread_view(service, caller, thread_id)


@router.patch("/{thread_id}", response_model=dict[str, Any])
def update_thread(thread_id: str, body: ThreadPatch, service: ServiceDep, caller: Actor) -> dict[str, Any]:
    """Merge metadata into the thread's."""
    with session_scope(service.url) as session:
        visible_thread(session, caller, thread_id)
        records.update_meta(session, thread_id=thread_id, meta=body.metadata)
    return read_thread_view(service, caller, thread_id)


@router.get("/{thread_id}/state", response_model=dict[str, Any])
def read_thread_state(thread_id: str, service: ServiceDep, caller: Reader) -> dict[str, Any]:
    """The mission graph's latest checkpoint: values, next nodes, tasks and the pending gates as interrupts."""
    with session_scope(service.url, readonly=True) as session:
        _, mission = _with_mission(session, caller, thread_id)
    return read_state(service, thread_id, mission.id) if mission is not None else empty_state(thread_id)


@router.get("/{thread_id}/state/{checkpoint_id}", response_model=dict[str, Any])
def read_thread_state_at(thread_id: str, checkpoint_id: str, service: ServiceDep, caller: Reader) -> dict[str, Any]:
    """The state at one checkpoint of the thread's history."""
    with session_scope(service.url, readonly=True) as session:
        _, mission = _with_mission(session, caller, thread_id)
    if mission is None:
        raise InputError(f"thread {thread_id} has no checkpoints yet: its mission has not started")
    config = {"configurable": {"thread_id": mission.id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}
    snapshot = service.runner.graph.get_state(config)
    if snapshot.config is None or not snapshot.created_at:
        raise InputError(f"thread {thread_id} has no checkpoint {checkpoint_id!r}")
    return state_view(thread_id, snapshot)


@router.post("/{thread_id}/history", response_model=list[dict[str, Any]], status_code=status.HTTP_200_OK)
def read_thread_history(thread_id: str, body: HistoryRequest, service: ServiceDep, caller: Reader
                        ) -> list[dict[str, Any]]:
    """The thread's checkpoints, newest first."""
    with session_scope(service.url, readonly=True) as session:
        _, mission = _with_mission(session, caller, thread_id)
    if mission is None:
        return []
    before = body.before if isinstance(body.before, str) else (body.before or {}).get("checkpoint_id")
    config = {"configurable": {"thread_id": mission.id, "checkpoint_ns": ""}}
    before_config = {"configurable": {**config["configurable"], "checkpoint_id": before}} if before else None
    history = service.runner.graph.get_state_history(config, filter=body.metadata or None, before=before_config,
                                                     limit=body.limit)
    return [state_view(thread_id, snapshot) for snapshot in history]
